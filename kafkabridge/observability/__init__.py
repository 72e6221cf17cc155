"""Observability: metrics (hook events → Prometheus) and OpenTelemetry tracing of a message's life."""
