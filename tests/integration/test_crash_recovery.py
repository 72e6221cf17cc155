"""The bridge dies or is stopped mid-stream; after a restart no message is missing.

kill -9 may duplicate (published but not yet committed); SIGTERM must not.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support
from tests.app import recorder

TOTAL = 4000


def produce_in_background(topic: str) -> threading.Thread:
    """Keeps producing while the bridge runs, so the stop lands mid-stream."""

    def run() -> None:
        for start in range(0, TOTAL, 200):
            support.produce(topic, ((f"k{i}".encode(), f"v{i}".encode(), None) for i in range(start, start + 200)))
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def handled(ns: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in recorder.client().hgetall(recorder.key("handled", ns)).items()}


def begin_stream(ns: str, kafka_admin: AdminClient, bridges: list, logs: Path) -> tuple[str, threading.Thread]:
    """A topic being produced to, with a first bridge that has handled some of it already."""
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    producing = produce_in_background(topic)
    bridges.append(support.start_bridge(ns, [topic], logs))
    support.wait_until(lambda: len(handled(ns)) >= 300, timeout=60, what="the first messages to be handled")
    assert producing.is_alive(), "the producer finished already: what comes next would not be mid-stream"
    return topic, producing


def finish_stream(ns: str, topic: str, producing: threading.Thread) -> dict[str, int]:
    """Waits until every produced message was handled and committed; how often each was handled."""
    producing.join(120)
    assert not producing.is_alive()
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


def test_kill_9_mid_stream_loses_nothing(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path
) -> None:
    counts = stop_mid_stream_and_restart(ns, kafka_admin, bridges, logs, signal.SIGKILL)
    duplicates = sum(counts.values()) - len(counts)
    print(f"\nkill -9 mid-stream: {len(counts)} of {TOTAL} messages handled, {duplicates} duplicate deliveries")
    assert len(counts) == TOTAL


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
