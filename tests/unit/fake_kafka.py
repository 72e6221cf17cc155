"""A fake Kafka for testing the bridge's loop without a broker: a consumer faithful where the loop relies on it.

What :class:`FakeConsumer` copies from librdkafka, because the bridge's correctness depends on it:

- Rebalance callbacks run inside ``consume()``, when the test scheduled them (:meth:`FakeConsumer.rebalance`).
  After ``on_assign``/``on_revoke`` the client assigns/unassigns by itself unless the callback did.
- A partition is prefetched ahead of what ``consume()`` returns. ``pause()`` throws its prefetched
  messages away; ``resume()`` fetches again from the position after the last message returned to the
  application. A pause of a partition not assigned yet does nothing (a pause inside ``on_assign``
  before the assignment is lost).
- An asynchronous commit reports through the config's ``on_commit`` during a later ``consume()``;
  ``close()`` revokes what is assigned through ``on_revoke``; a member that never got partitions
  has its leave request time out behind its join, which librdkafka logs (through ``logger``).
- ``consume(n, timeout)`` with nothing to return waits ``timeout``: here it advances the clock.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, TopicPartition

from kafkabridge.errors import PublishError
from kafkabridge.message import Message
from kafkabridge.wire import FIRST_DELIVERY, Delivery

PartitionKey = tuple[str, int]


class FakeClock:
    """Monotonic seconds that move only when told to (or when a fake waits)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    advance = sleep


@dataclass(frozen=True)
class FakeMessage:
    """What ``consume()`` returns, with confluent-kafka's accessor methods."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None = None
    _key: bytes | None = None
    _headers: list[tuple[str, bytes]] | None = None
    _timestamp_ms: int = 1_700_000_000_000
    _error: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._timestamp_ms


class FakeKafka:
    """The cluster: one log per partition, the group's committed offsets, and the consumers created."""

    def __init__(self, clock: FakeClock, *, prefetch: int = 50) -> None:
        self.clock = clock
        self.prefetch = prefetch
        self.logs: dict[PartitionKey, list[FakeMessage]] = {}
        self.committed: dict[PartitionKey, int] = {}
        self.consumers: list[FakeConsumer] = []

    def produce(self, partition: PartitionKey, *values: bytes) -> None:
        log = self.logs.setdefault(partition, [])
        for value in values:
            log.append(FakeMessage(partition[0], partition[1], len(log), value))

    def consumer(self, config: dict[str, Any]) -> FakeConsumer:
        """The bridge's ``consumer_factory``."""
        consumer = FakeConsumer(self, config)
        self.consumers.append(consumer)
        return consumer

    @property
    def last_consumer(self) -> FakeConsumer:
        return self.consumers[-1]


@dataclass
class _Fetch:
    """One assigned partition: the next offset to return, the next to fetch, and what was prefetched."""

    position: int
    fetch_at: int
    prefetched: deque[FakeMessage] = field(default_factory=deque)
    paused: bool = False


class FakeConsumer:
    """confluent_kafka.Consumer as the bridge uses it, plus what a test needs to steer and inspect it."""

    def __init__(self, kafka: FakeKafka, config: dict[str, Any]) -> None:
        self.kafka = kafka
        self.config = config
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.closed = False
        self.consume_calls = 0
        self.returned: list[FakeMessage] = []
        self.discarded: dict[PartitionKey, int] = {}
        self.pause_calls: list[set[PartitionKey]] = []
        self.resume_calls: list[set[PartitionKey]] = []
        self.commits: list[dict[PartitionKey, int]] = []
        self.stray_commits: list[PartitionKey] = []
        self._fetches: dict[PartitionKey, _Fetch] = {}
        self._scheduled: list[tuple[int, str, list[PartitionKey]]] = []
        self._served: deque[Callable[[], None]] = deque()
        self._assigned_by_callback = False
        self._ever_assigned = False

    # -- steering (the test) ------------------------------------------------------------------

    def rebalance(self, *, assign: Sequence[PartitionKey] = (), revoke: Sequence[PartitionKey] = (),
                  lose: Sequence[PartitionKey] = (), after_consumes: int = 0) -> None:
        """Run these rebalance callbacks inside a coming ``consume()`` call (the next one by default)."""
        due = self.consume_calls + after_consumes + 1
        for kind, partitions in (("revoke", revoke), ("lose", lose), ("assign", assign)):
            if partitions:
                self._scheduled.append((due, kind, list(partitions)))

    @property
    def paused(self) -> set[PartitionKey]:
        return {partition for partition, fetch in self._fetches.items() if fetch.paused}

    def returned_offsets(self, partition: PartitionKey) -> list[int]:
        return [m.offset() for m in self.returned if (m.topic(), m.partition()) == partition]

    # -- confluent_kafka.Consumer --------------------------------------------------------------

    def subscribe(self, topics: list[str], *, on_assign: Callable[..., None] | None = None,
                  on_revoke: Callable[..., None] | None = None, on_lost: Callable[..., None] | None = None) -> None:
        self.topics = list(topics)
        self.callbacks = {k: v for k, v in (("assign", on_assign), ("revoke", on_revoke), ("lose", on_lost)) if v}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        self._check_open()
        self.consume_calls += 1
        self._serve_rebalances()
        while self._served:
            self._served.popleft()()
        self._prefetch()
        batch = self._take(num_messages)
        if not batch and timeout > 0:
            self.kafka.clock.sleep(timeout)
        return batch

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(*partition) for partition in sorted(self._fetches)]

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._fetches.clear()
        self.incremental_assign(partitions)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned_by_callback = True
        for tp in partitions:
            position = self.kafka.committed.get((tp.topic, tp.partition), 0)
            self._fetches[(tp.topic, tp.partition)] = _Fetch(position=position, fetch_at=position)
            self._ever_assigned = True

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self._assigned_by_callback = True
        for tp in partitions:
            self._fetches.pop((tp.topic, tp.partition), None)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        """The group's committed offsets (-1001, librdkafka's "none", where nothing was committed)."""
        return [TopicPartition(tp.topic, tp.partition, self.kafka.committed.get((tp.topic, tp.partition), -1001)) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        """(low, high): the log's first offset and the offset after its last message."""
        return 0, len(self.kafka.logs.get((partition.topic, partition.partition), []))

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Throws the prefetched messages away: on resume they are fetched again from the position."""
        self.pause_calls.append(_keys(partitions))
        for fetch_key in _keys(partitions):
            fetch = self._fetches.get(fetch_key)
            if fetch is None:
                continue  # not assigned (yet): librdkafka has nothing to pause
            fetch.paused = True
            self.discarded[fetch_key] = self.discarded.get(fetch_key, 0) + len(fetch.prefetched)
            fetch.prefetched.clear()
            fetch.fetch_at = fetch.position

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resume_calls.append(_keys(partitions))
        for fetch_key in _keys(partitions):
            if fetch_key in self._fetches:
                self._fetches[fetch_key].paused = False

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool = True) -> list[TopicPartition] | None:
        self._check_open()
        done = {(tp.topic, tp.partition): tp.offset for tp in offsets}
        self.stray_commits += [partition for partition in done if partition not in self._fetches]
        self.commits.append(done)
        self.kafka.committed.update(done)
        result = [TopicPartition(topic, partition, offset) for (topic, partition), offset in done.items()]
        if asynchronous:
            self._served.append(lambda: self.config["on_commit"](None, result))
            return None
        return result

    def close(self) -> None:
        """Revokes what is assigned (through ``on_revoke``), leaves the group, and is unusable after."""
        self._check_open()
        if self._fetches:
            self._rebalance("revoke", sorted(self._fetches))
        elif not self._ever_assigned and "logger" in self.config:
            self.config["logger"].log(logging.WARNING, "REQTMOUT [rdkafka#consumer-1] [thrd:GroupCoordinator]: "
                                      "Timed out LeaveGroupRequest in flight (after 5004ms, timeout #0)")
        self.closed = True

    # -- inside -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")

    def _serve_rebalances(self) -> None:
        due = [event for event in self._scheduled if event[0] <= self.consume_calls]
        self._scheduled = [event for event in self._scheduled if event[0] > self.consume_calls]
        for _, kind, partitions in due:
            self._rebalance(kind, partitions)

    def _rebalance(self, kind: str, partitions: list[PartitionKey]) -> None:
        tps = [TopicPartition(*partition) for partition in partitions]
        self._assigned_by_callback = False
        if kind in self.callbacks:
            self.callbacks[kind](self, tps)
        if not self._assigned_by_callback:
            (self.incremental_assign if kind == "assign" else self.incremental_unassign)(tps)

    def _prefetch(self) -> None:
        for partition, fetch in self._fetches.items():
            log = self.kafka.logs.get(partition, [])
            while not fetch.paused and len(fetch.prefetched) < self.kafka.prefetch and fetch.fetch_at < len(log):
                fetch.prefetched.append(log[fetch.fetch_at])
                fetch.fetch_at += 1

    def _take(self, limit: int) -> list[FakeMessage]:
        """Up to ``limit`` prefetched messages, interleaved across partitions (each partition in order)."""
        batch: list[FakeMessage] = []
        while len(batch) < limit:
            ready = [fetch for fetch in self._fetches.values() if fetch.prefetched]
            if not ready:
                break
            for fetch in ready[: limit - len(batch)]:
                message = fetch.prefetched.popleft()
                fetch.position = message.offset() + 1
                batch.append(message)
        self.returned += batch
        return batch


def _keys(partitions: Iterable[TopicPartition]) -> set[PartitionKey]:
    return {(tp.topic, tp.partition) for tp in partitions}


class FakePublisher:
    """Records what it "publishes"; can be told to refuse, as the Celery broker does when it is down."""

    def __init__(self) -> None:
        self.published: list[Message] = []
        self.deliveries: list[Delivery] = []
        self.calls = 0
        self._refusals = 0
        self._accept_only: int | None = None

    def refuse(self, times: int = 1_000_000) -> None:
        """Refuse the next ``times`` publishes (by default: until :meth:`accept`)."""
        self._refusals = times

    def accept(self) -> None:
        self._refusals = 0
        self._accept_only = None

    def accept_only(self, count: int) -> None:
        """The next publish confirms its first ``count`` messages, then fails (a partly applied batch)."""
        self._accept_only = count

    def publish(self, messages: Sequence[Message], delivery: Delivery = FIRST_DELIVERY) -> None:
        self.deliveries.append(delivery)
        self.calls += 1
        if self._accept_only is not None:
            count, self._accept_only = self._accept_only, None
            self.published += messages[:count]
            raise PublishError(ConnectionError("connection lost mid-batch"), published=count)
        if self._refusals:
            self._refusals -= 1
            raise PublishError(ConnectionRefusedError("Celery broker down"), published=0)
        self.published += messages

    def offsets(self, partition: PartitionKey) -> list[int]:
        return [m.offset for m in self.published if (m.topic, m.partition) == partition]
