"""The consumer loop: Kafka in batches → one Celery task per message, offsets committed at least once.

One message's way through the loop::

    consume() batch ─► track(offset) ─► publish to Celery ─► mark_done(offset) ─► commit committable()

An offset is committed only when every earlier message of its partition was confirmed by the broker
(:class:`~kafkabridge.consumer.offsets.OffsetTracker` decides). If the broker refuses a publish, the bridge keeps
the messages, pauses its partitions (it keeps calling ``consume()`` so Kafka does not think it died) and
tries again with backoff. On revocation and on stop it publishes what it holds, commits, and closes.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, TopicPartition

from ..backoff import broker_outage_delay
from ..checks import check_visibility_timeout
from ..errors import ConfigurationError, PublishError
from ..hooks import HookDispatcher
from ..message import Message, from_millis
from .offsets import OffsetTracker
from .publisher import CeleryPublisher
from ..registry import handlers
from ..settings import BridgeSettings

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

AT_LEAST_ONCE_CONSUMER_CONFIG: Mapping[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
DEFAULT_CONSUMER_CONFIG: Mapping[str, Any] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
}

ConsumerFactory = Callable[[dict[str, Any]], Consumer]


class Bridge:
    """Runs the loop for ``topics`` until :meth:`stop` is called (by a signal or another thread)."""

    def __init__(
        self,
        *,
        settings: BridgeSettings,
        topics: Sequence[str],
        publisher: CeleryPublisher,
        hooks: HookDispatcher | None = None,
        consumer_factory: ConsumerFactory = Consumer,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._publisher = publisher
        self._hooks = hooks or HookDispatcher()
        self._consumer_factory = consumer_factory
        self._tracker = OffsetTracker()
        self._pending: deque[Message] = deque()
        self._publish_failures = 0
        self._retry_publish_at = 0.0
        self._paused = False
        self._stop_requested = False
        self._last_commit = time.monotonic()
        self._reported_errors: dict[str, float] = {}
        self._consumer: Consumer | None = None

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka options: the user's, the defaults, and the at-least-once options nobody may change."""
        user = dict(self._settings.consumer_config)
        for option, required in AT_LEAST_ONCE_CONSUMER_CONFIG.items():
            if option in user and str(user[option]).lower() != str(required).lower():
                raise ConfigurationError(f"consumer option {option}={user[option]!r} would break at-least-once delivery; remove it")
        return {
            **DEFAULT_CONSUMER_CONFIG,
            **user,
            **AT_LEAST_ONCE_CONSUMER_CONFIG,
            "bootstrap.servers": self._settings.bootstrap_servers,
            "group.id": self._settings.group_id,
            "error_cb": self._on_kafka_error,
            "on_commit": self._on_commit,
        }

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish its publishes, commit and close. Safe from a signal handler."""
        self._stop_requested = True

    def stop_on_signals(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            logger.info("received %s: finishing publishes, committing, closing", signal.Signals(signum).name)
            self.stop()

        for signum in signals:
            signal.signal(signum, handler)

    def run(self) -> None:
        consumer = self._consumer = self._consumer_factory(self.consumer_config())
        consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        logger.info("bridge consuming %s as group %r", ", ".join(self._topics), self._settings.group_id)
        try:
            while not self._stop_requested:
                self._run_once(consumer)
            self._drain()
            self._commit()
        finally:
            consumer.close()  # leaves the group; on_revoke commits anything still committable
            self._consumer = None
            logger.info("bridge closed")

    # -- the loop ---------------------------------------------------------------------------------

    def _run_once(self, consumer: Consumer) -> None:
        for raw in self._fetch(consumer):
            if raw.error() is not None:
                self._report_consumer_error(raw.error())
                continue
            message = to_message(raw)
            self._tracker.track((message.topic, message.partition), message.offset)
            self._pending.append(message)
        if self._pending and time.monotonic() >= self._retry_publish_at:
            self._publish_pending()
        if time.monotonic() - self._last_commit >= self._settings.commit_interval:
            self._commit(wait=False)

    def _fetch(self, consumer: Consumer) -> list[Any]:
        """A batch of what Kafka has now: wait (up to ``poll_timeout``) only while there is nothing.

        ``consume(n, timeout)`` waits until ``n`` messages arrived or the timeout passed, which at low
        traffic would hold the first message back for the whole timeout. Waiting for one message,
        then taking whatever else is already fetched, keeps latency low and batches large under load.
        """
        first = consumer.consume(1, self._settings.poll_timeout)
        if not first or self._settings.batch_size == 1:
            return first
        return first + consumer.consume(self._settings.batch_size - 1, 0)

    def _publish_pending(self) -> bool:
        """Publish everything held; returns whether the broker took it all."""
        batch = list(self._pending)
        try:
            self._publisher.publish(batch)
        except PublishError as error:
            self._confirm(batch[: error.published])
            self._on_publish_failure(batch[error.published :], error)
            return False
        self._confirm(batch)
        if self._publish_failures:
            logger.warning("Celery broker accepts publishes again after %d failure(s); resuming", self._publish_failures)
            self._publish_failures = 0
            self._set_paused(False)
        return True

    def _confirm(self, published: Sequence[Message]) -> None:
        for message in published:
            self._pending.popleft()
            self._tracker.mark_done((message.topic, message.partition), message.offset)
        if published:
            self._hooks.emit("on_batch_published", published)

    def _on_publish_failure(self, held: Sequence[Message], error: PublishError) -> None:
        self._publish_failures += 1
        delay = broker_outage_delay(self._publish_failures)
        self._retry_publish_at = time.monotonic() + delay
        self._set_paused(True)
        logger.error(
            "Celery broker refused a publish (%r); holding %d message(s), partitions paused, retrying in %.1fs",
            error.cause, len(held), delay,
        )
        self._hooks.emit("on_publish_failed", held, error.cause)

    def _drain(self) -> None:
        """On stop: keep trying to publish what was consumed, for at most ``shutdown_timeout`` seconds."""
        deadline = time.monotonic() + self._settings.shutdown_timeout
        while self._pending and time.monotonic() < deadline:
            if not self._publish_pending():
                time.sleep(max(0.0, min(self._retry_publish_at, deadline) - time.monotonic()))
        if self._pending:
            logger.error("stopping with %d unpublished message(s); they are not committed and will be read again", len(self._pending))

    def _commit(self, only: set[tuple[str, int]] | None = None, *, wait: bool = True) -> None:
        """Commit what the tracker allows. ``wait=False`` (the periodic commit) does not block the loop:
        the tracker learns the result in :meth:`_on_commit`, so a failed commit is offered again."""
        self._last_commit = time.monotonic()
        offsets = self._tracker.committable()
        if only is not None:
            offsets = {tp: offset for tp, offset in offsets.items() if tp in only}
        if not offsets or self._consumer is None:
            return
        partitions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        try:
            committed = self._consumer.commit(offsets=partitions, asynchronous=not wait)
        except KafkaException as error:
            logger.warning("offset commit failed (%s); it is tried again with the next commit", error.args[0])
            return
        if wait:
            self._on_commit(None, committed or partitions)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            self._report_once(f"commit:{error.code()}", "offset commit failed (%s); it is tried again with the next commit", error)
            return
        for tp in partitions:
            if tp.error is not None:
                self._report_once(f"commit:{tp.topic}:{tp.partition}", "offset commit of %s[%d] failed (%s); tried again later", tp.topic, tp.partition, tp.error)
        done = {(tp.topic, tp.partition): tp.offset for tp in partitions if tp.error is None and tp.offset >= 0}
        if done:
            self._tracker.committed(done)
            self._hooks.emit("on_offsets_committed", done)

    def _set_paused(self, paused: bool) -> None:
        if self._consumer is None or paused == self._paused:
            return
        assignment = self._consumer.assignment()
        if assignment:
            (self._consumer.pause if paused else self._consumer.resume)(assignment)
        self._paused = paused

    # -- rebalance callbacks (run inside consume()) ----------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("assigned %s", _describe(partitions))
        if self._paused:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        logger.info("revoked %s: publishing what is held, committing", _describe(partitions))
        held = [m for m in self._pending if (m.topic, m.partition) in revoked]
        if held and not self._publish_pending():
            logger.warning("could not publish %d held message(s) of revoked partitions; their next owner reads them again", len(held))
        self._commit(only=revoked)
        self._forget(revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.warning("lost %s without a clean revoke: nothing committed for them; their next owner reads them again", _describe(partitions))
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, partitions: set[tuple[str, int]]) -> None:
        self._pending = deque(m for m in self._pending if (m.topic, m.partition) not in partitions)
        self._tracker.forget(partitions)

    # -- errors -----------------------------------------------------------------------------------

    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            logger.critical("fatal Kafka client error: %s", error)
            self.stop()
            return
        self._report_once(f"kafka:{error.code()}", "Kafka client error (librdkafka retries by itself): %s", error)

    def _report_consumer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            self._report_once(f"topic:{error.str()}", "subscribed topic does not exist (yet); waiting for it: %s", error)
        elif error.fatal():
            raise KafkaException(error)
        else:
            self._report_once(f"consume:{error.code()}", "consume error: %s", error)

    def _report_once(self, key: str, template: str, *args: Any, every: float = 60.0) -> None:
        """Log a recurring error at most once per ``every`` seconds, so a long outage does not flood the log."""
        now = time.monotonic()
        if now - self._reported_errors.get(key, -every) >= every:
            self._reported_errors[key] = now
            logger.warning(template, *args)


def to_message(raw: Any) -> Message:
    """A kafkabridge Message from a confluent-kafka one; a record whose headers cannot be read keeps the reason."""
    problem = None
    try:
        headers = tuple((str(name), value if value is None else bytes(value)) for name, value in raw.headers() or ())
    except Exception as error:  # librdkafka could not decode them: the handler must not guess
        headers, problem = (), f"headers could not be read: {error!r}"
    timestamp_type, timestamp_ms = raw.timestamp()
    timestamp = None if timestamp_type == TIMESTAMP_NOT_AVAILABLE else from_millis(timestamp_ms)
    return Message(
        topic=raw.topic(), partition=raw.partition(), offset=raw.offset(), key=raw.key(), value=raw.value(),
        headers=headers, timestamp=timestamp, problem=problem,
    )


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def build_bridge(
    app: Celery,
    settings: BridgeSettings,
    *,
    topics: Sequence[str] = (),
    group_id: str | None = None,
    hooks: HookDispatcher | None = None,
) -> Bridge:
    """A bridge for ``topics`` (default: the settings', else every topic with a handler), checked before it runs.

    Imports the Celery app's task modules so that every ``@kafka_handler`` has registered its topic.
    """
    app.loader.import_default_modules()
    if group_id:
        settings = replace(settings, group_id=group_id)
    routes = handlers.routes_for(topics or settings.topics)
    check_visibility_timeout(app, routes.values())
    publisher = CeleryPublisher(app, routes, queue=settings.queue)
    return Bridge(settings=settings, topics=list(routes), publisher=publisher, hooks=hooks)
