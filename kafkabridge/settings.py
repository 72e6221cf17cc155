"""The bridge's settings: one plain object, built in one place from a mapping and the environment.

The library never reads Django settings; the Django app passes ``settings.KAFKABRIDGE`` to
:meth:`BridgeSettings.from_mapping`, and so can any other framework.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .errors import ConfigurationError
from .ratelimit.limits import Limit
from .schema import Schema

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
DEFAULT_GROUP_ID = "kafkabridge"
DEFAULT_BATCH_SIZE = 500
"""Messages asked of ``Consumer.consume()`` at once."""
DEFAULT_POLL_TIMEOUT = 0.5
"""Seconds ``consume()`` may wait for a batch; also bounds how fast a stop request is noticed."""
DEFAULT_COMMIT_INTERVAL = 1.0
"""Seconds between offset commits while running (revocation and shutdown always commit)."""
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
"""Seconds a stopping bridge keeps trying to publish what it already consumed before it closes."""
DEFAULT_MAX_IN_FLIGHT = 1000
"""Messages per partition published and not yet final; at the bound the partition is held."""
DEFAULT_LEASE_GRACE = 30.0
"""Seconds added to every completion lease: how late a worker may be (a busy pool, a slow clock) before
its message counts as lost and is dispatched again."""
DEFAULT_METRICS_ADDRESS = "0.0.0.0"
"""Where ``/metrics`` listens when ``METRICS_PORT`` is set (every interface, as Prometheus exporters do)."""
DEFAULT_STATUS_INTERVAL = 5.0
"""Seconds between two publications of a bridge's status (its heartbeat) in Redis."""
COMMIT_AFTER_COMPLETION = "completion"
"""Commit a partition's offset only below its first message without a final outcome (the default)."""
COMMIT_AFTER_PUBLISH = "publish"
"""Commit once the Celery broker confirmed the publish; a broker that loses data loses those messages."""


ENVIRONMENT_OVERRIDES = {
    "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
    "KAFKABRIDGE_GROUP_ID": "group_id",
    "KAFKABRIDGE_GROUP_INSTANCE_ID": "group_instance_id",
    "KAFKABRIDGE_COMMIT_AFTER": "commit_after",
    "KAFKABRIDGE_METRICS_PORT": "metrics_port",
    "KAFKABRIDGE_STATUS_INTERVAL": "status_interval",
}
"""Environment variables that win over the mapping, and the option each one sets."""
_CONVERSIONS = {"metrics_port": int, "status_interval": float}


@dataclass(frozen=True, kw_only=True)
class BridgeSettings:
    """Everything the bridge and the handler tasks need to know about their surroundings."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    group_id: str = DEFAULT_GROUP_ID
    group_instance_id: str | None = None
    """Static group membership (librdkafka ``group.instance.id``); None: a new member at every start.

    Without it, a bridge that was killed (not stopped) still owns its partitions until Kafka expires
    its session (``session.timeout.ms``, 45 s by default), and its replacement waits that long. With a
    stable id per bridge process (e.g. the pod or host name plus a process number), a replacement
    with the same id takes the same partitions back at once.
    The price: a static member does not leave the group when it stops either, so a bridge that is
    really gone (scaled down, or stopped and not restarted) holds its partitions, unread, until its
    session times out. Ids must be unique per bridge process: a second process started with the same
    id fences the first one out of the group (a fatal error for it).
    """
    topics: tuple[str, ...] = ()
    """Topics the bridge consumes; empty means every topic that has a handler."""
    queue: str | None = None
    """Celery queue for handler tasks; None uses the Celery app's default queue."""
    batch_size: int = DEFAULT_BATCH_SIZE
    poll_timeout: float = DEFAULT_POLL_TIMEOUT
    commit_interval: float = DEFAULT_COMMIT_INTERVAL
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    """Extra librdkafka consumer options; they cannot switch off the at-least-once options."""
    celery_app: str | None = None
    """Import path (``module:attribute``) of your project's Celery app, e.g. ``"proj.celery:app"``."""
    dead_letter_store: str | None = None
    """Import path of a :class:`kafkabridge.dead_letter.DeadLetterStore` class."""
    hooks: tuple[str, ...] = ()
    """Import paths of :class:`kafkabridge.hooks.Hooks` classes, called in this order."""
    commit_after: str = COMMIT_AFTER_COMPLETION
    """``"completion"``: Kafka stays the source of truth until every message's outcome is final
    (handled, or stored as a dead letter); workers record outcomes in Redis and the bridge commits
    below the first unfinished message, dispatching again what nobody holds any more.
    ``"publish"``: commit once the Celery broker confirmed the publish (faster to commit, no
    completion ledger); from then on a Celery message lost with Redis, or with a worker that dies
    holding it, is lost for good, and a message that crashes its worker loops until the visibility
    timeout."""
    completion_redis_url: str | None = None
    """Redis of the completion ledger; None: the Celery broker's URL (which must then be Redis)."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Per partition, messages published and not yet final (completion mode); bounds the bridge's memory."""
    lease_grace: float = DEFAULT_LEASE_GRACE
    """Seconds a worker's completion lease outlasts the run's time limit (or a retry's countdown plus the
    time limit). Shorter: a dead or frozen worker's message is dispatched again sooner; too short: a
    run slower than its lease (a stalled pool, a paused process) is dispatched again while it still runs."""
    rate_limits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Topic → limit of each of its partitions at the bridge's intake, shared by every bridge:
    ``{"orders": {"RATE": 100, "BURST": 200, "MAX_RATE": 500, "LAG_THRESHOLD": 1000, "LAG_SCALE": 5000}}``
    (tokens per second; see :class:`kafkabridge.ratelimit.Limit`)."""
    rate_limit_redis_url: str | None = None
    """Redis of the shared token buckets; None: the Celery broker's URL (which must then be Redis)."""
    producer_config: Mapping[str, Any] = field(default_factory=dict)
    """Extra librdkafka options of :class:`kafkabridge.Producer` (over its defaults: idempotent, ``acks=all``)."""
    metrics_port: int | None = None
    """Port of Prometheus' ``/metrics`` in ``runbridge`` and in a Celery worker's main process; None: not served.
    Needs ``kafkabridge.observability.metrics.PrometheusHooks`` in ``hooks`` (docs/observability.md)."""
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    """Address ``/metrics`` listens on."""
    schemas: Mapping[str, Any] = field(default_factory=dict)
    """Topic → JSON Schema (a dict, or a JSON file's path) its messages must match: checked by the handler
    task before the handler runs (a mismatch is dead-lettered at once) and by ``Producer.send``."""
    alerts: Mapping[str, Any] = field(default_factory=dict, repr=False)  # holds a secret (WEBHOOK_URL)
    """Grouped chat alerts of :class:`kafkabridge.alerts.AlertHooks` (docs/alerts.md): ``WEBHOOK_URL`` (or the
    environment's ``KAFKABRIDGE_ALERTS_WEBHOOK_URL``), ``BASE_URL``, ``WINDOW``, ``UPDATE_INTERVAL``, ``KINDS``, ..."""
    status_interval: float = DEFAULT_STATUS_INTERVAL
    """Seconds between a bridge's status publications (:func:`kafkabridge.observability.bridges.live_bridges`);
    a status expires after three of them, and a bridge whose status expired without a clean stop is reported."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigurationError(f"BATCH_SIZE must be at least 1, got {self.batch_size}")
        if self.max_in_flight < 1:
            raise ConfigurationError(f"MAX_IN_FLIGHT must be at least 1, got {self.max_in_flight}")
        if self.commit_after not in (COMMIT_AFTER_COMPLETION, COMMIT_AFTER_PUBLISH):
            raise ConfigurationError(
                f"COMMIT_AFTER must be {COMMIT_AFTER_COMPLETION!r} or {COMMIT_AFTER_PUBLISH!r}, got {self.commit_after!r}"
            )
        self.topic_limits()  # refuse a malformed limit at start-up, not at the first message
        self.topic_schemas()  # the same for a malformed schema or a missing schema file
        if self.alerts:  # a malformed ALERTS is a start-up error too (kafkabridge[alerts] is then needed anyway)
            from .alerts.settings import AlertSettings

            AlertSettings.from_mapping(self.alerts, environ={})
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigurationError(f"METRICS_PORT must be a port number (1-65535) or None, got {self.metrics_port}")
        if self.lease_grace < 0:
            raise ConfigurationError(f"LEASE_GRACE must be zero or more seconds, got {self.lease_grace}")
        for name in ("poll_timeout", "commit_interval", "shutdown_timeout", "status_interval"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name.upper()} must be a positive number of seconds")

    def topic_limits(self) -> dict[str, Limit]:
        """``rate_limits`` as :class:`~kafkabridge.ratelimit.limits.Limit` objects (checked here)."""
        return {topic: options if isinstance(options, Limit) else Limit.from_mapping(options) for topic, options in self.rate_limits.items()}

    def topic_schemas(self) -> dict[str, Schema]:
        """``schemas`` compiled (once per process, see :mod:`kafkabridge.schema`)."""
        return {topic: Schema.load(declared) for topic, declared in self.schemas.items()}

    @property
    def tracks_completion(self) -> bool:
        return self.commit_after == COMMIT_AFTER_COMPLETION

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> BridgeSettings:
        """Build settings from ``KAFKABRIDGE``-style options (upper or lower case), then the environment."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            name = key.lower()
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                did_you_mean = f" Did you mean {hint[0].upper()!r}?" if hint else ""
                raise ConfigurationError(
                    f"unknown kafkabridge option {key!r}.{did_you_mean} Known options: {', '.join(sorted(k.upper() for k in known))}"
                )
            values[name] = tuple(value) if name in ("topics", "hooks") else value
        environ = os.environ if environ is None else environ
        for variable, name in ENVIRONMENT_OVERRIDES.items():
            if environ.get(variable):
                values[name] = _CONVERSIONS.get(name, str)(environ[variable])
        return cls(**values)
