"""``AlertHooks``: hook events → alert events, handed to this process's sender (never blocking, never raising)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import redis
from celery.signals import worker_ready

from ..hooks import Hooks
from .events import BRIDGE_STOPPED, DEAD_LETTER, LAG, OUTAGE, PRODUCE_FAILED, RATE_LIMITED, REQUEUE_FAILED, AlertEvent, group_id
from .groups import AlertGroups
from .notifiers import notifier_for
from .sender import AlertSender
from .settings import AlertSettings

if TYPE_CHECKING:
    from ..dead_letter import DeadLetterRecord
    from ..observability.bridges import BridgeStatus
    from ..message import Message, MessageId
    from ..settings import BridgeSettings

logger = logging.getLogger(__name__)

KEY_CHARS, MESSAGE_CHARS = 100, 300
"""How much of a key and an exception message an example keeps (the admin has the rest)."""


class AlertHooks(Hooks):
    """List ``"kafkabridge.alerts.AlertHooks"`` in ``KAFKABRIDGE["HOOKS"]`` and set ``ALERTS`` (docs/alerts.md)."""

    def __init__(self, settings: BridgeSettings | None = None) -> None:
        self._bridge_settings = settings
        self._sender: AlertSender | None = None
        self._configured = False
        self._requeue_failed: OrderedDict[str, None] = OrderedDict()
        self._down: set[str] = set()
        worker_ready.connect(self._start_sender)  # an idle worker watches for silent bridges too

    def _start_sender(self, **_: Any) -> None:
        if self.sender is not None:
            self.sender.start()

    # events ----------------------------------------------------------------------------------------------
    def on_dead_lettered(self, record: DeadLetterRecord) -> None:
        member = str(record.message_id)
        if member in self._requeue_failed:  # reported as REQUEUE_FAILED just before
            del self._requeue_failed[member]
            return
        self._submit(self._failure(DEAD_LETTER, record))

    def on_requeue_failed(self, record: DeadLetterRecord) -> None:
        self._requeue_failed[str(record.message_id)] = None
        while len(self._requeue_failed) > 1000:
            self._requeue_failed.popitem(last=False)
        self._submit(self._failure(REQUEUE_FAILED, record))

    def on_resolved(self, message_id: MessageId, handler: str) -> None:
        if self.sender is not None:
            self.sender.submit(("resolve", str(message_id), None))

    def on_handler_started(self, message: Message, handler: str) -> None:
        if self.sender is not None:
            self.sender.start()  # every worker process can send due groups, not only those that saw events

    def on_partition_progress(self, progress: Mapping[Any, Any]) -> None:
        if self.sender is not None:
            self.sender.start()  # the bridge sends due groups even when it sees no event itself

    def on_rate_limited(self, message: Message, handler: str, wait: float) -> None:
        if wait >= self._settings_threshold(RATE_LIMITED):
            self._submit(AlertEvent(RATE_LIMITED, message.topic, handler, _now(), {"id": str(message.id), "wait": f"{wait:.1f}s"}))

    def on_partition_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        by_topic: dict[str, int] = defaultdict(int)
        for (topic, _), lag in lags.items():
            by_topic[topic] += lag
        threshold = self._settings_threshold(LAG)
        for topic, lag in by_topic.items():
            if lag > threshold:
                self._submit(AlertEvent(LAG, topic, "", _now(), {"topic": topic, "message": f"{lag} messages behind"}))

    def on_produce_failed(self, topic: str, error: BaseException) -> None:
        self._submit(AlertEvent(PRODUCE_FAILED, topic, _class(error), _now(), {"topic": topic, "message": str(error)[:MESSAGE_CHARS]}))

    def on_publish_failed(self, messages: Sequence[Message], error: BaseException) -> None:
        self.on_service_error("celery broker", error)

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        if "celery broker" in self._down:
            self.on_service_restored("celery broker")

    def on_service_error(self, service: str, error: BaseException) -> None:
        """Kafka, Redis (the Celery broker) or the database is unreachable from this process.

        Reported once the outage lasted the kind's THRESHOLD (seconds; 0: at once); each later error counts.
        """
        sender = self.sender
        if sender is None or not sender.settings.kind_enabled(OUTAGE):
            return
        event = AlertEvent(OUTAGE, service, "", _now(), {"topic": service, "exception": _class(error), "message": str(error)[:MESSAGE_CHARS]})
        threshold, key = sender.settings.threshold(OUTAGE), f"outage:{service}"
        if service not in self._down and threshold > 0:
            sender.defer(key, event, threshold)
        elif not sender.deferred(key):  # reported (or to be reported at once): this error counts
            sender.submit(event)
        self._down.add(service)

    def on_service_restored(self, service: str) -> None:
        """The recovery edits the outage's message; an outage shorter than the threshold sends nothing at all."""
        self._down.discard(service)
        sender = self.sender
        if sender is not None and not sender.cancel(f"outage:{service}"):
            sender.submit(("resolve", None, group_id(OUTAGE, service, "")))

    def on_bridge_status(self, status: BridgeStatus) -> None:
        """This bridge is alive: its heartbeat in the alerts' Redis, for the watch (alerts/watch.py)."""
        sender = self.sender
        if sender is not None and sender.settings.kind_enabled(BRIDGE_STOPPED):
            sender.submit(("beat", status.instance, {"instance": status.instance, "group": status.group,
                                                     "host": status.host, "pid": status.pid}))

    def on_bridge_stopped(self, instance: str) -> None:
        """A clean stop: said to Redis now (once, bounded by its timeout), so that no one reports this bridge."""
        sender = self.sender
        if sender is None or not sender.settings.kind_enabled(BRIDGE_STOPPED):
            return
        try:
            sender.watch.left(instance)
        except redis.RedisError as error:
            logger.warning("alerts: could not record this bridge's clean stop (%r); it may be reported as stopped unexpectedly", error)

    # wiring ----------------------------------------------------------------------------------------------
    @property
    def sender(self) -> AlertSender | None:
        """This process's sender; None when alerts are off (no webhook URL). Built at the first event."""
        if not self._configured:
            self._configured = True
            try:
                self._sender = build_sender(self._settings(), self._bridge())
            except Exception:  # reported once; the process runs on without alerts
                logger.exception("alerts are off in this process: their settings or wiring are broken")
        return self._sender

    def _settings(self) -> AlertSettings:
        return AlertSettings.from_mapping(self._bridge().alerts)

    def _bridge(self) -> BridgeSettings:
        if self._bridge_settings is None:
            from .. import runtime

            self._bridge_settings = runtime.current().settings
        return self._bridge_settings

    def _settings_threshold(self, kind: str) -> float:
        sender = self.sender
        return sender.settings.threshold(kind) if sender else float("inf")

    def _submit(self, event: AlertEvent) -> None:
        sender = self.sender
        if sender is not None and sender.settings.kind_enabled(event.kind):
            sender.submit(event)

    def _failure(self, kind: str, record: DeadLetterRecord) -> AlertEvent:
        message = record.message
        key = None if message.key is None else message.key.decode("utf-8", "replace")[:KEY_CHARS]
        example = {"id": str(record.message_id), "key": key, "attempts": record.attempts,
                   "exception": record.exception_class.rsplit(".", 1)[-1], "message": record.exception_message[:MESSAGE_CHARS]}
        return AlertEvent(kind, message.topic, record.exception_class, record.last_failed_at.timestamp(), example,
                          member=str(record.message_id))


def build_sender(settings: AlertSettings, bridge: BridgeSettings | None = None) -> AlertSender | None:
    if not settings.enabled:
        return None
    url = settings.redis_url or (bridge.completion_redis_url if bridge else None) or _broker_url()
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return AlertSender(settings, AlertGroups(client, settings), notifier_for(settings))


def _broker_url() -> str:
    from .. import runtime

    return str(runtime.celery_app().conf.broker_url)


def _class(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}"


def _now() -> float:
    return time.time()
