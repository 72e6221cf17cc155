"""The consumer loop: Kafka in batches → one Celery task per message, offsets committed at least once.

One message's way through the loop::

    consume() ─► track(offset), hold it ─► flow control admits it ─► publish to Celery
              ─► mark_done(offset) ─► commit committable()

Every turn, :class:`~kafkabridge.consumer.flow_control.FlowControl` decides per partition how many of
the held messages may go now and which partitions stay paused; the loop pauses and resumes
partitions on its word, without knowing why (a broker outage, a rate limit, an in-flight bound).
It keeps calling ``consume()`` while partitions are paused, so the group never thinks it died.
What ``consume()`` returned stays held until published (see :mod:`~kafkabridge.consumer.pending`).
An offset is committed only when every earlier message of its partition was confirmed by the
broker (:class:`~kafkabridge.consumer.offsets.OffsetTracker` decides). On revocation and on stop the
bridge publishes what it may, commits, and lets go.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any, Callable, Collection, Mapping, Protocol, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from redis.exceptions import RedisError

from ..errors import ConfigurationError, PublishError
from ..hooks import HookDispatcher
from ..message import Message
from ..observability.bridges import PartitionStatus, StatusReporter
from ..settings import BridgeSettings
from ..wire import FIRST_DELIVERY, Delivery
from .completion import CompletionTracking, InFlightBound, Lost, new_token
from .flow_control import BrokerOutage, Cause, FlowControl, Holds, next_look
from .lag import LagProbe
from .offsets import OffsetTracker, PartitionKey
from .pending import PendingMessages, partition_of
from .records import describe, keys, to_message, topic_partitions

__all__ = ["Bridge", "Publisher", "to_message"]

logger = logging.getLogger(__name__)
client_logger = logging.getLogger("kafkabridge.librdkafka")

AT_LEAST_ONCE_CONSUMER_CONFIG: Mapping[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
DEFAULT_CONSUMER_CONFIG: Mapping[str, Any] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
}
LIBRDKAFKA_SESSION_TIMEOUT_MS = 45_000
"""librdkafka's default ``session.timeout.ms``, named in the log when no other value was set."""
WAITING_LOG_INTERVAL = 10.0
"""Seconds between "waiting for partitions" lines while the bridge has been assigned none."""
PROGRESS_LOG_INTERVAL = 60.0
"""Seconds between "progress" lines (committed offset, lowest unfinished, in flight per partition)."""
LAG_INTERVAL = 2.0
"""Seconds between measurements of the consumer lag of each assigned partition."""
IN_FLIGHT_POLL = 0.2
"""Seconds between looks at the ledger while a stopping bridge waits for its in-flight messages."""
KAFKA_PROBE_INTERVAL = 5.0
"""Seconds between metadata requests while every broker is down, to notice Kafka is back on an idle topic."""
KAFKA_PROBE_TIMEOUT = 1.0
"""Seconds one such request may block the loop (which has nothing to consume meanwhile anyway)."""

ConsumerFactory = Callable[[dict[str, Any]], Consumer]
Clock = Callable[[], float]


class Publisher(Protocol):
    """What the loop needs of a publisher: :class:`~kafkabridge.consumer.publisher.CeleryPublisher`, or a test's fake."""

    def publish(self, messages: Sequence[Message], delivery: Delivery = FIRST_DELIVERY) -> None: ...


class Bridge:
    """Runs the loop for ``topics`` until :meth:`stop` is called (by a signal or another thread).

    ``causes`` hold partitions back besides the broker outage, which is always the first cause.
    With ``completion``, offsets are committed only below the first message without a final outcome
    (see :mod:`~kafkabridge.consumer.completion`); without it, once the broker confirmed the publish.
    ``status`` publishes what the bridge holds every few seconds (see :mod:`~kafkabridge.observability.bridges`);
    without it the snapshots only reach the hooks.
    ``clock`` and ``sleep`` (monotonic seconds) are injectable so that tests drive time themselves.
    """

    def __init__(
        self,
        *,
        settings: BridgeSettings,
        topics: Sequence[str],
        publisher: Publisher,
        hooks: HookDispatcher | None = None,
        consumer_factory: ConsumerFactory = Consumer,
        causes: Sequence[Cause] = (),
        completion: CompletionTracking | None = None,
        status: StatusReporter | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._publisher = publisher
        self._hooks = hooks or HookDispatcher()
        self._consumer_factory = consumer_factory
        self._completion = completion
        self._status = status or StatusReporter(None, group=settings.group_id, interval=settings.status_interval)
        self._holds: Holds = {}
        self._lags: dict[PartitionKey, int] = {}
        bound = [InFlightBound(completion, settings.max_in_flight)] if completion is not None else []
        self._flow = FlowControl([BrokerOutage(), *bound, *causes])
        self._clock = clock
        self._sleep = sleep
        self._tracker = OffsetTracker()
        self._pending = PendingMessages()
        self._assigned: set[PartitionKey] = set()
        self._paused: set[PartitionKey] = set()
        self._paused_when_forgotten: set[PartitionKey] = set()
        self._wake_at: float | None = None
        self._joined = self._ever_assigned = False
        self._stop_requested = False
        self._committed: dict[PartitionKey, int] = {}
        self._positions: dict[PartitionKey, int] = {}
        """Per partition, the offset after the last message consume() returned."""
        self._next_lag = 0.0
        self._lag = LagProbe(report=self._report_once)
        self._started_at = self._last_commit = self._last_progress_log = self._clock()
        self._next_waiting_log = self._started_at + WAITING_LOG_INTERVAL
        self._reported_errors: dict[str, float] = {}
        self._ledger_down = False
        self._kafka_down_until_probe: float | None = None
        """While every broker is down: when to ask Kafka again whether it answers (None: Kafka is up)."""
        self._client_log = _ClientLog()
        self._consumer: Consumer | None = None

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka options: the user's, the defaults, and the at-least-once options nobody may change."""
        user = dict(self._settings.consumer_config)
        for option, required in AT_LEAST_ONCE_CONSUMER_CONFIG.items():
            if option in user and str(user[option]).lower() != str(required).lower():
                raise ConfigurationError(f"consumer option {option}={user[option]!r} would break at-least-once delivery; remove it")
        static = {"group.instance.id": self._settings.group_instance_id} if self._settings.group_instance_id else {}
        return {
            **DEFAULT_CONSUMER_CONFIG,
            "logger": self._client_log,
            **user,
            **static,
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
        """Consume until stopped; then publish what is held (up to ``shutdown_timeout``), commit and close."""
        self.start()
        clean = False
        try:
            while not self._stop_requested:
                self.run_once()
            self._finish()
            clean = True
        finally:
            self._close(clean=clean)

    def start(self) -> None:
        """Create the consumer and join the group (nothing happens until the first :meth:`run_once`)."""
        if self._consumer is not None:
            return
        self._consumer = self._consumer_factory(self.consumer_config())
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        logger.info("bridge consuming %s as group %r", ", ".join(self._topics), self._settings.group_id)

    @property
    def _kafka(self) -> Consumer:
        assert self._consumer is not None, "start() creates the consumer"
        return self._consumer

    # -- the loop ---------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One turn: fetch a batch, publish what flow control admits, pause/resume, commit when due."""
        self._consume()
        self._probe_kafka()
        self._publish_admitted()
        if self._clock() - self._last_commit >= self._settings.commit_interval:
            self._check_completion()
            self._commit(wait=False)
        self._measure_lag()
        self._apply_holds()
        self._report_status()
        self._say_what_it_waits_for()

    def _consume(self) -> None:
        """A batch of what Kafka has now: wait (up to ``poll_timeout``) only while there is nothing.

        ``consume(n, timeout)`` waits until ``n`` messages arrived or the timeout passed, which at low
        traffic would hold the first message back for the whole timeout. Waiting for one message,
        then taking whatever else is already fetched, keeps latency low and batches large under load.
        Each result is taken before the next call, because a rebalance callback may run inside it.
        """
        if self._take(self._kafka.consume(1, self._wait_time())) and self._settings.batch_size > 1:
            self._take(self._kafka.consume(self._settings.batch_size - 1, 0))

    def _wait_time(self) -> float:
        """``poll_timeout``, or less when a cause wants to look again sooner (a probe, a rate limit's refill)."""
        if self._wake_at is None:
            return self._settings.poll_timeout
        return max(0.0, min(self._settings.poll_timeout, self._wake_at - self._clock()))

    def _take(self, records: list[Any]) -> bool:
        """Hold what ``consume()`` returned; returns whether it returned anything."""
        for raw in records:
            if raw.error() is not None:
                self._report_consumer_error(raw.error())
                continue
            if self._kafka_down_until_probe is not None:
                self._kafka_restored()
            message = to_message(raw)
            self._tracker.track(partition_of(message), message.offset)
            self._pending.add(message)
            self._positions[partition_of(message)] = message.offset + 1
        return bool(records)

    def _publish_admitted(self, only: Collection[PartitionKey] | None = None) -> bool:
        """Publish what flow control lets go now (of ``only`` these partitions); returns whether that went through."""
        partitions = self._assigned | self._pending.partitions() if only is None else only
        admitted = self._flow.admit(self._pending.counts(partitions), self._clock())
        batch = self._pending.first(admitted)
        return bool(batch) and self._publish(batch)

    def _publish(self, batch: Sequence[Message]) -> bool:
        """Hand ``batch`` to the broker; returns whether it confirmed all of it."""
        try:
            self._dispatch(batch)
        except PublishError as error:
            self._confirm(batch[: error.published])
            self._on_refused(batch[error.published :], error)
            return False
        self._confirm(batch)
        self._flow.published(batch, self._clock())
        return True

    def _dispatch(self, batch: Sequence[Message]) -> None:
        """Publish ``batch``; with completion tracking, as a new dispatch claimed in the ledger first
        (so that older copies stand down). Raises :class:`PublishError` if either refuses."""
        if self._completion is None:
            self._publisher.publish(batch)
            return
        token = new_token()
        try:
            self._completion.claim(batch, token)
        except RedisError as error:
            raise PublishError(error, published=0) from error
        self._publisher.publish(batch, Delivery(group=self._settings.group_id, token=token))

    def _confirm(self, published: Sequence[Message]) -> None:
        """The broker has these: final now (commit-after-publish), or in flight until their outcome."""
        self._pending.confirm(published)
        if self._completion is not None:
            self._completion.dispatched(published, self._clock())
        else:
            self._mark_done(published)
        if published:
            self._hooks.emit("on_batch_published", published)

    def _mark_done(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._tracker.mark_done(partition_of(message), message.offset)

    def _check_completion(self, only: Collection[PartitionKey] | None = None) -> None:
        """Learn which in-flight messages are final (the tracker may commit past them) and dispatch again
        those nobody holds any more."""
        if self._completion is None:
            return
        try:
            check = self._completion.check(self._clock(), only)
        except RedisError as error:
            self._report_once("ledger", "completion ledger unreachable (%r); nothing is committed past unfinished messages meanwhile", error)
            if not self._ledger_down:
                self._ledger_down = True
                self._hooks.emit("on_service_error", "redis", error)
            return
        if self._ledger_down:
            self._ledger_down = False
            self._hooks.emit("on_service_restored", "redis")
        self._mark_done(check.done)
        if check.lost:
            self._redispatch(check.lost)
        self._report_progress()

    def _redispatch(self, lost: Sequence[Lost]) -> None:
        messages = [entry.message for entry in lost]
        sample = ", ".join(f"{m.id} ({reason})" for m, reason in lost[:3])
        logger.warning("dispatching %d message(s) again, nobody holds them any more: %s%s", len(lost), sample, " …" if len(lost) > 3 else "")
        try:
            self._dispatch(messages)
        except PublishError as error:
            self._report_once("redispatch", "could not dispatch them again (%r); tried again at the next check", error.cause)
            return
        assert self._completion is not None
        self._completion.dispatched(messages, self._clock())
        self._hooks.emit("on_redispatched", messages, [entry.reason for entry in lost])

    def _measure_lag(self) -> None:
        """Every ``LAG_INTERVAL`` seconds: each assigned partition's lag, to flow control (the lag-adaptive
        rate) and the hooks."""
        now = self._clock()
        if now < self._next_lag or not self._assigned:
            return
        self._next_lag = now + LAG_INTERVAL
        lags = self._lag.measure(self._kafka, self._assigned, self._positions, self._pending.counts(self._assigned), self._paused)
        if lags:
            self._lags.update(lags)
            self._flow.lag(lags, now)
            self._hooks.emit("on_partition_lag", lags)

    def _report_progress(self) -> None:
        """Per partition: committed offset, lowest unfinished offset, in flight; to the hooks, and logged every minute."""
        assert self._completion is not None
        progress = self._completion.progress({p: o for p, o in self._committed.items() if p in self._assigned})
        self._hooks.emit("on_partition_progress", progress)
        now = self._clock()
        if progress and now - self._last_progress_log >= PROGRESS_LOG_INTERVAL:
            self._last_progress_log = now
            logger.info("progress: %s", "; ".join(
                f"{t}[{p}] committed {s.committed}, lowest unfinished {s.lowest_unfinished}, in flight {s.in_flight}"
                for (t, p), s in sorted(progress.items())
            ))

    def _on_refused(self, held: Sequence[Message], error: PublishError) -> None:
        self._flow.refused(held, error, self._clock())
        self._hooks.emit("on_publish_failed", held, error.cause)

    def _apply_holds(self) -> Holds:
        """Pause what a cause holds now and resume what none holds any more; leave the rest alone (no churn)."""
        now = self._clock()
        holds = self._flow.holds(self._pending.counts(self._assigned), now)
        self._resume(self._paused - holds.keys())
        self._pause(holds.keys() - self._paused, holds)
        self._wake_at = next_look(holds, now)
        self._holds = holds
        return holds

    def _report_status(self) -> None:
        """Every ``STATUS_INTERVAL`` seconds: this bridge's partitions, their lag, rate and holds, to Redis (off the loop)."""
        now = self._clock()
        if not self._status.due(now):
            return
        rates: dict[PartitionKey, float] = {}
        for cause in self._flow.causes:
            rates.update(getattr(cause, "effective_rates", dict)())
        status = self._status.publish(tuple(
            PartitionStatus(topic, partition, self._lags.get((topic, partition)), rates.get((topic, partition)),
                            tuple(sorted(self._holds.get((topic, partition), ()))))
            for topic, partition in sorted(self._assigned)
        ), now)
        self._hooks.emit("on_bridge_status", status)

    def _pause(self, partitions: set[PartitionKey], holds: Holds) -> None:
        if partitions:
            self._kafka.pause(topic_partitions(partitions))
            self._paused |= partitions
            logger.debug("paused %s: %s", describe(partitions), {describe([p]): holds[p] for p in partitions})

    def _resume(self, partitions: set[PartitionKey]) -> None:
        if partitions:
            self._kafka.resume(topic_partitions(partitions))
            self._paused -= partitions
            logger.debug("resumed %s: no cause holds them any more", describe(partitions))

    def _finish(self) -> None:
        """On stop: publish what is held, wait for what is in flight, commit; or say there was nothing to do.

        Both waits share ``shutdown_timeout``. With completion tracking the commit then goes as far as
        the outcomes allow; what is left is read again by the next owner, whose dispatch the older
        copies stand down for.
        """
        self._status.stopping()
        self._report_status()
        if not self._ever_assigned:
            self._client_log.quiet = True  # closing may time out on the join still in flight: not news
            logger.info("stopped before it was assigned any partition of group %r; nothing to commit", self._settings.group_id)
            return
        deadline = self._clock() + self._settings.shutdown_timeout
        while self._unfinished() and self._clock() < deadline:
            if not (self._pending and self._publish_admitted()):
                self._sleep(max(0.0, min(self._next_try(), deadline) - self._clock()))
            self._check_completion()
            self._report_status()
        if self._pending:
            logger.error("stopping with %d unpublished message(s); they are not committed and will be read again", len(self._pending))
        if self._completion is not None and len(self._completion):
            logger.warning("stopping with %d message(s) in flight; they are not committed and will be read again", len(self._completion))
        self._commit()

    def _unfinished(self) -> bool:
        return bool(self._pending) or (self._completion is not None and bool(len(self._completion)))

    def _next_try(self) -> float:
        """When to try again while stopping: when a cause looks again, soon when waiting for outcomes."""
        now = self._clock()
        wake_at = next_look(self._apply_holds(), now) or now + self._settings.poll_timeout
        return min(wake_at, now + IN_FLIGHT_POLL) if self._completion is not None and len(self._completion) else wake_at

    def _close(self, *, clean: bool = True) -> None:
        """Leave the group (on_revoke commits anything still committable) and forget the consumer.

        Only a clean stop removes the bridge's status; after a crash it expires, and the alerts report a
        bridge that stopped unexpectedly.
        """
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._status.close(remove=clean)
        if clean:
            self._hooks.emit("on_bridge_stopped", self._status.instance)
        logger.info("bridge closed")

    def _commit(self, only: Collection[PartitionKey] | None = None, *, wait: bool = True) -> None:
        """Commit what the tracker allows. ``wait=False`` (the periodic commit) does not block the loop:
        the tracker learns the result in :meth:`_on_commit`, so a failed commit is offered again."""
        self._last_commit = self._clock()
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
        if done and self._kafka_down_until_probe is not None:
            self._kafka_restored()
        if done:
            self._tracker.committed(done)
            self._committed.update(done)
            if self._completion is not None:
                self._completion.advance(done)
            self._hooks.emit("on_offsets_committed", done)

    def _say_what_it_waits_for(self) -> None:
        """Until the bridge joined its group, say every ``WAITING_LOG_INTERVAL`` seconds why that may take long.

        A bridge started right after another member of its group was killed gets nothing until
        Kafka expires that member's session; without this line it would sit there silently.
        """
        now = self._clock()
        if self._joined or now < self._next_waiting_log:
            return
        self._next_waiting_log = now + WAITING_LOG_INTERVAL
        hint = "" if self._settings.group_instance_id else "; with GROUP_INSTANCE_ID, a restarted bridge takes them back at once"
        logger.info(
            "waiting for partitions of group %r for %.0fs (a previous member may still hold them until its "
            "session times out, session.timeout.ms=%s%s)",
            self._settings.group_id, now - self._started_at, self._session_timeout_ms(), hint,
        )

    def _session_timeout_ms(self) -> Any:
        return self._settings.consumer_config.get("session.timeout.ms", LIBRDKAFKA_SESSION_TIMEOUT_MS)

    # -- rebalance callbacks (run inside consume()) ----------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Take the partitions, paused at once if a cause holds them (e.g. while the broker is down).

        A pause before the assignment takes effect is lost, so the callback assigns them itself
        (the client then does not) and asks flow control right after. The other way round, librdkafka
        keeps an application's pause of a partition across its revocation and reassignment, while the
        bridge forgot it on revoke: so a partition coming back is resumed first, then held again only
        if a cause holds it now (else it would never be fetched again).
        """
        logger.info("assigned %s", describe(keys(partitions)))
        if not partitions and not self._assigned:
            logger.info("group %r gave this bridge no partitions: its other members hold them all; standing by", self._settings.group_id)
        self._joined = True
        self._ever_assigned = self._ever_assigned or bool(partitions)
        if self._cooperative():
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        still_paused = keys(partitions) & self._paused_when_forgotten
        if still_paused:
            consumer.resume(topic_partitions(still_paused))
            self._paused_when_forgotten -= still_paused
        self._assigned |= keys(partitions)
        self._start_ledger(consumer, partitions)
        self._apply_holds()

    def _start_ledger(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Tell the completion ledger where each new partition starts: its committed offset.

        Everything below it is final; an offset reset (a replay) moves it back, so replayed messages
        run again instead of counting as duplicates.
        """
        if self._completion is None or not partitions:
            return
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as error:
            logger.warning("could not read the committed offsets of %s (%s); the ledger keeps its old floor", describe(keys(partitions)), error)
            return
        self._completion.advance({(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed})

    def _cooperative(self) -> bool:
        config = {**DEFAULT_CONSUMER_CONFIG, **self._settings.consumer_config}
        return "cooperative" in str(config["partition.assignment.strategy"]) or config.get("group.protocol") == "consumer"

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Publish what flow control lets go of the revoked partitions, commit them, and forget the rest."""
        revoked = keys(partitions)
        logger.info("revoked %s: publishing what is held, committing", describe(revoked))
        self._publish_admitted(only=revoked)
        self._check_completion(only=revoked)
        self._commit(only=revoked)
        dropped = self._forget(revoked)
        if dropped:
            logger.warning("could not publish %d held message(s) of revoked partitions; their next owner reads them again", dropped)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = keys(partitions)
        logger.warning("lost %s without a clean revoke: nothing committed for them; their next owner reads them again", describe(lost))
        self._forget(lost)

    def _forget(self, partitions: set[PartitionKey]) -> int:
        """Drop everything about partitions this bridge no longer owns; returns how many held messages went."""
        self._paused_when_forgotten |= partitions & self._paused  # librdkafka keeps that pause: see _on_assign
        self._tracker.forget(partitions)
        self._flow.forget(partitions)
        if self._completion is not None:
            self._completion.forget(partitions)
        for partition in partitions:
            self._committed.pop(partition, None)
            self._positions.pop(partition, None)
            self._lags.pop(partition, None)
        self._assigned -= partitions
        self._paused -= partitions
        return self._pending.drop(partitions)

    # -- errors -----------------------------------------------------------------------------------

    def _on_kafka_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (inside ``consume()``). Only a fatal error or every broker down is an
        outage for the hooks (one broker's dropped connection is routine); the first consumed message, successful
        commit or metadata answer after it is the recovery."""
        if error.fatal():
            logger.critical("fatal Kafka client error: %s", error)
            self._hooks.emit("on_service_error", "kafka", KafkaException(error))
            self.stop()
            return
        self._report_once(f"kafka:{error.code()}", "Kafka client error (librdkafka retries by itself): %s", error)
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self._kafka_down_until_probe is None:
            self._kafka_down_until_probe = self._clock() + KAFKA_PROBE_INTERVAL
            self._hooks.emit("on_service_error", "kafka", KafkaException(error))

    def _probe_kafka(self) -> None:
        """While every broker is down, ask for the topics' metadata every ``KAFKA_PROBE_INTERVAL`` seconds."""
        if self._kafka_down_until_probe is None or self._clock() < self._kafka_down_until_probe:
            return
        self._kafka_down_until_probe = self._clock() + KAFKA_PROBE_INTERVAL
        try:
            self._kafka.list_topics(self._topics[0] if self._topics else None, timeout=KAFKA_PROBE_TIMEOUT)
        except KafkaException:
            return
        self._kafka_restored()

    def _kafka_restored(self) -> None:
        self._kafka_down_until_probe = None
        logger.warning("Kafka answers again")
        self._hooks.emit("on_service_restored", "kafka")

    def _report_consumer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            self._report_once(f"topic:{error.str()}", "subscribed topic does not exist (yet); waiting for it: %s", error)
        elif error.fatal():
            raise KafkaException(error)
        else:
            self._report_once(f"consume:{error.code()}", "consume error: %s", error)

    def _report_once(self, key: str, template: str, *args: Any, every: float = 60.0) -> None:
        """Log a recurring error at most once per ``every`` seconds, so a long outage does not flood the log."""
        now = self._clock()
        if now - self._reported_errors.get(key, -every) >= every:
            self._reported_errors[key] = now
            logger.warning(template, *args)


class _ClientLog:
    """librdkafka's own log lines, through Python logging (confluent-kafka calls ``log(level, fmt, *args)``).

    ``quiet`` turns them into debug lines: a bridge stopped before it was assigned anything leaves a
    group whose join is still in flight, and librdkafka reports the leave request timing out
    behind it. The bridge says what happened in one line of its own instead.
    """

    def __init__(self) -> None:
        self.quiet = False

    def log(self, level: int, template: str, *args: Any) -> None:
        client_logger.log(logging.DEBUG if self.quiet else level, template, *args)
