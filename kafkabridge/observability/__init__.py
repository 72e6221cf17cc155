"""Observability: hook subclasses that turn a message's life into metrics (and, later, traces)."""
