"""The console's settings: one place reads ``settings.KAFKABRIDGE_CONSOLE``, with defaults, refusing unknown keys."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_BULK_CAP = 10_000
"""Most failures one bulk action may take; above it the operator is asked to narrow the filter."""
DEFAULT_BULK_RATE = 50.0
"""Failures per second a bulk job acts on: a requeue of thousands must not flood the handlers' queue."""
DEFAULT_BULK_BATCH = 25
"""Failures per step of a bulk job: its progress is saved (and its audit written) after each step."""
DEFAULT_RETENTION = "30d"
"""Resolved and discarded failures older than this are deleted by `manage.py prunefailures` (units s, m, h, d, w)."""


@dataclass(frozen=True)
class ConsoleSettings:
    BULK_CAP: int = DEFAULT_BULK_CAP
    BULK_RATE: float = DEFAULT_BULK_RATE
    BULK_BATCH: int = DEFAULT_BULK_BATCH
    RETENTION: str = DEFAULT_RETENTION


def console_settings() -> ConsoleSettings:
    """``KAFKABRIDGE_CONSOLE`` as read now (tests override it with ``override_settings``)."""
    options = dict(getattr(settings, "KAFKABRIDGE_CONSOLE", {}))
    known = {field.name for field in fields(ConsoleSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ImproperlyConfigured(f"KAFKABRIDGE_CONSOLE: unknown option(s) {unknown}; known ones are {sorted(known)}")
    return ConsoleSettings(**options)
