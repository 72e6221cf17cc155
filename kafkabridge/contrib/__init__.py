"""Integrations with frameworks; each subpackage imports its framework, the core of kafkabridge does not."""
