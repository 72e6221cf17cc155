"""The bridge dies or is stopped mid-stream; after a restart no message is missing.

kill -9 may duplicate (published but not yet committed); SIGTERM must not.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient

from tests import support
from tests.app import recorder

TOTAL = 4000
CHUNK = 100
LEAD = 400
"""The producer stays at most this many messages ahead of what was handled: the bridge always has work."""
HELD_AT = TOTAL // 2
"""The producer stops here until the test releases it, so whatever the test does first happens mid-stream."""
STARTED = 300
"""Handled messages after which the first bridge counts as well under way."""


class PacedProducer(threading.Thread):
    """Produces TOTAL records in order, keeping pace with the handling and holding at HELD_AT until released."""

    def __init__(self, ns: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.ns, self.topic = ns, topic
        self.released = threading.Event()
        self.produced = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, TOTAL, CHUNK):
                if start >= HELD_AT and not self.released.wait(300):
                    raise AssertionError("the test never released the producer")
                support.wait_until(lambda: len(handled(self.ns)) + LEAD >= start + CHUNK, timeout=300, interval=0.02,
                                   what=f"handling to catch up with the producer at {start}")
                support.produce(self.topic, ((f"k{i}".encode(), f"v{i}".encode(), None) for i in range(start, start + CHUNK)))
                self.produced = start + CHUNK
        except BaseException as error:  # reported by finish_stream
            self.error = error


def handled(ns: str) -> dict[str, int]:
    return recorder.handled_counts(ns)


def begin_stream(ns: str, kafka_admin: AdminClient, bridges: list, logs: Path) -> tuple[str, PacedProducer]:
    """A topic being produced to, with a first bridge that has handled some of it already."""
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    producing = PacedProducer(ns, topic)
    producing.start()
    bridges.append(support.start_bridge(ns, [topic], logs))
    support.wait_until(lambda: len(handled(ns)) >= STARTED, timeout=60, what="the first messages to be handled")
    assert producing.produced < TOTAL, "what comes next must happen mid-stream"  # held at HELD_AT until released
    return topic, producing


def finish_stream(ns: str, topic: str, producing: PacedProducer) -> dict[str, int]:
    """Waits until every produced message was handled and committed; how often each was handled."""
    producing.released.set()
    producing.join(120)
    assert not producing.is_alive()
    assert producing.error is None, f"the producer failed: {producing.error!r}"
    support.wait_until(lambda: len(handled(ns)) >= TOTAL, timeout=180, what=f"all {TOTAL} messages handled")
    ends = support.end_offsets(topic)
    assert sum(ends.values()) == TOTAL
    support.wait_until(lambda: support.committed_offsets(ns, topic) == ends, timeout=30, what="offsets committed to the end")
    return handled(ns)


def stop_mid_stream_and_restart(ns: str, kafka_admin: AdminClient, bridges: list, logs: Path, signum: int) -> dict[str, int]:
    topic, producing = begin_stream(ns, kafka_admin, bridges, logs)
    bridges[0].signal(signum)
    bridges[0].process.wait(60)
    bridges.append(support.start_bridge(ns, [topic], logs))
    return finish_stream(ns, topic, producing)


def position(message_id: str) -> tuple[int, int]:
    """(partition, offset) of ``topic/partition@offset``."""
    partition, offset = message_id.rsplit("/", 1)[1].split("@")
    return int(partition), int(offset)


def beyond(committed: dict[int, int], message_ids: object) -> set[str]:
    """The messages at or after their partition's committed offset: a restarted bridge reads them again."""
    return {m for m in message_ids if position(m)[1] >= max(committed[position(m)[0]], 0)}  # type: ignore[attr-defined]


def published_tasks_finished(ns: str) -> bool:
    """Nothing of this test's Celery queue is waiting in Redis or unacknowledged (running) in a worker."""
    broker = redis.Redis.from_url(support.BROKER_URL)
    unacked = (json.loads(entry) for entry in broker.hvals("unacked"))  # kombu: [message, exchange, routing key]
    return broker.llen(ns) == 0 and not any(entry[2] == ns for entry in unacked)


def freeze_on_published_but_uncommitted_work(ns: str, topic: str, bridge: support.ServiceProcess) -> tuple[dict[int, int], set[str]]:
    """Freezes ``bridge`` (SIGSTOP) at a moment when work it published is not committed yet.

    Frozen, it can neither publish nor commit: once the worker finished every task it published, the
    committed offsets and the published messages are what a kill at the freeze would leave behind.
    A freeze that happens to land when everything is committed is undone (SIGCONT) and tried again
    later in the stream. Returns the committed offsets and the published messages at or beyond them.
    """
    for _ in range(20):
        progress = len(handled(ns))
        bridge.signal(signal.SIGSTOP)
        support.wait_until(lambda: published_tasks_finished(ns), timeout=30, what="the frozen bridge's published tasks to be handled")
        committed = support.committed_offsets(ns, topic)
        in_flight = beyond(committed, handled(ns))
        if in_flight:
            return committed, in_flight
        bridge.signal(signal.SIGCONT)
        support.wait_until(lambda: len(handled(ns)) >= progress + CHUNK // 2, timeout=60, what="the stream to go on")
    raise AssertionError("every freeze of the bridge found all its published work committed")


def test_kill_9_mid_stream_loses_nothing(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, record_property
) -> None:
    topic, producing = begin_stream(ns, kafka_admin, bridges, logs)
    committed, in_flight = freeze_on_published_but_uncommitted_work(ns, topic, bridges[0])
    bridges[0].signal(signal.SIGKILL)
    bridges[0].process.wait(60)
    assert support.committed_offsets(ns, topic) == committed, "nothing may be committed after the freeze"

    bridges.append(support.start_bridge(ns, [topic], logs))
    counts = finish_stream(ns, topic, producing)
    duplicates = {message_id: n for message_id, n in counts.items() if n > 1}
    duplicate_deliveries = sum(duplicates.values()) - len(duplicates)
    print(f"\nkill -9 mid-stream: {len(counts)} of {TOTAL} messages handled; {len(in_flight)} published but not committed "
          f"at the kill; {duplicate_deliveries} duplicate deliveries")
    record_property("published_not_committed_at_kill", len(in_flight))
    record_property("duplicate_deliveries", duplicate_deliveries)
    assert len(counts) == TOTAL
    assert set(duplicates) <= in_flight, f"handled twice though committed before the kill: {sorted(set(duplicates) - in_flight)[:5]}"
    assert duplicate_deliveries <= len(in_flight), f"handled more than twice: {[d for d in duplicates.items() if d[1] > 2][:5]}"


def test_sigterm_mid_stream_loses_nothing_and_duplicates_nothing(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path
) -> None:
    counts = stop_mid_stream_and_restart(ns, kafka_admin, bridges, logs, signal.SIGTERM)
    assert bridges[0].process.returncode == 0
    assert "bridge closed" in bridges[0].log()
    duplicates = {message_id: n for message_id, n in counts.items() if n > 1}
    assert len(counts) == TOTAL
    assert duplicates == {}, f"{len(duplicates)} messages handled twice, e.g. {list(duplicates.items())[:5]}"


def test_a_second_bridge_joining_mid_stream_takes_partitions_without_loss_or_duplicates(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path
) -> None:
    topic, producing = begin_stream(ns, kafka_admin, bridges, logs)
    first, second = bridges[0], support.start_bridge(ns, [topic], logs)
    bridges.append(second)
    first.wait_for_log(r"revoked", timeout=60)

    counts = finish_stream(ns, topic, producing)
    duplicates = {message_id: n for message_id, n in counts.items() if n > 1}
    assert len(counts) == TOTAL
    assert duplicates == {}, f"{len(duplicates)} messages handled twice across the rebalance"
    assert "assigned" in second.log() and first.alive() and second.alive()
