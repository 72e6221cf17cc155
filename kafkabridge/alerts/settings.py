"""``KAFKABRIDGE["ALERTS"]``: read in one place, checked at start-up (the webhook URL may come from the environment)."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ConfigurationError
from .events import BRIDGE_STOPPED, KINDS, LAG, OUTAGE, RATE_LIMITED

WEBHOOK_URL_VARIABLE = "KAFKABRIDGE_ALERTS_WEBHOOK_URL"
"""Environment variable with the webhook URL; it wins over ``ALERTS["WEBHOOK_URL"]`` (keep secrets out of settings files)."""
DEFAULT_WINDOW = 30.0
"""Seconds from a group's first event to its first message (Alertmanager's group_wait)."""
DEFAULT_UPDATE_INTERVAL = 60.0
"""Least seconds between two edits of one group's message (group_interval)."""
DEFAULT_QUIET_AFTER = 300.0
"""Seconds without a new event after which the message says the group went quiet, and the group ends."""
DEFAULT_QUEUE_SIZE = 10_000
"""Events a process may hold before it records them in Redis; past it events are dropped, counted and logged."""
DEFAULT_TIMEOUT = 10.0
"""Seconds per HTTP request to the webhook (connect and read)."""
DEFAULT_MAX_RETRY_AFTER = 60.0
"""A 429's ``retry_after`` is honoured up to this many seconds at a time."""
DEFAULT_EXAMPLES = 5
ADMIN_PATH = "/admin/kafkabridge_failures/failedmessage/"
DEFAULT_THRESHOLDS = {RATE_LIMITED: 30.0, LAG: 10_000, OUTAGE: 0.0, BRIDGE_STOPPED: 30.0}
"""RATE_LIMITED: seconds a message waits for a token; LAG: messages behind on a topic; OUTAGE: seconds a service
stays unreachable before it is reported (a shorter outage sends nothing); BRIDGE_STOPPED: seconds without a
heartbeat from a bridge that did not stop cleanly (keep it above three STATUS_INTERVALs)."""

_OPTIONS = {
    "WEBHOOK_URL", "NOTIFIER", "BASE_URL", "ADMIN_PATH", "WINDOW", "UPDATE_INTERVAL", "QUIET_AFTER", "KINDS",
    "REDIS_URL", "QUEUE_SIZE", "TIMEOUT", "MAX_RETRY_AFTER", "EXAMPLES", "PREFIX",
}


@dataclass(frozen=True, kw_only=True)
class AlertSettings:
    webhook_url: str = field(default="", repr=False)
    """A secret: never logged, never in an error (``repr`` leaves it out)."""
    notifier: str = "discord"
    """``"discord"``, ``"json"`` (a generic JSON webhook), or the import path of a Notifier class."""
    base_url: str = ""
    admin_path: str = ADMIN_PATH
    window: float = DEFAULT_WINDOW
    update_interval: float = DEFAULT_UPDATE_INTERVAL
    quiet_after: float = DEFAULT_QUIET_AFTER
    kinds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    redis_url: str | None = None
    """Redis of the groups; None: COMPLETION_REDIS_URL, else the Celery broker."""
    queue_size: int = DEFAULT_QUEUE_SIZE
    timeout: float = DEFAULT_TIMEOUT
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    examples: int = DEFAULT_EXAMPLES
    prefix: str = "kafkabridge:alerts"

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in KINDS:
                raise ConfigurationError(f"ALERTS['KINDS'] has an unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
        for name in ("window", "update_interval", "quiet_after", "timeout", "max_retry_after"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"ALERTS['{name.upper()}'] must be a positive number of seconds")
        if self.queue_size < 1 or self.examples < 1:
            raise ConfigurationError("ALERTS['QUEUE_SIZE'] and ALERTS['EXAMPLES'] must be at least 1")

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def kind_enabled(self, kind: str) -> bool:
        return bool(self.kinds.get(kind, {}).get("ENABLED", True))

    def threshold(self, kind: str) -> float:
        return float(self.kinds.get(kind, {}).get("THRESHOLD", DEFAULT_THRESHOLDS.get(kind, 0)))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> AlertSettings:
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key.upper() not in _OPTIONS:
                hint = difflib.get_close_matches(key.upper(), _OPTIONS, n=1)
                raise ConfigurationError(
                    f"unknown ALERTS option {key!r}." + (f" Did you mean {hint[0]!r}?" if hint else "")
                    + f" Known options: {', '.join(sorted(_OPTIONS))}"
                )
            values[key.lower()] = value
        environ = os.environ if environ is None else environ
        if environ.get(WEBHOOK_URL_VARIABLE):
            values["webhook_url"] = environ[WEBHOOK_URL_VARIABLE]
        values["kinds"] = {kind: {k.upper(): v for k, v in opts.items()} for kind, opts in values.get("kinds", {}).items()}
        return cls(**values)
