"""The bridge's intake limit is per partition: a hot partition is held to its rate, the others keep flowing (item 2)."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.rates import per_second, windows

RATE, BURST = 10.0, 10.0
WINDOW = 6.0
COLD_RATE = 5.0
"""Messages per second produced to each of the other partitions: below their limit, so they should never wait."""
MAX_COLD_LATENCY = 2.0
"""Seconds from Kafka to handler start that a cold message may take (a poll, a publish, a worker's pick-up, a busy machine)."""


def test_a_hot_partition_is_held_to_its_rate_while_the_other_partitions_keep_flowing(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path
) -> None:
    # Given a topic limited to 10/s per partition at the bridge, and a backlog of 400 messages on partition 0
    topic = f"{ns}.timed"
    support.create_topics(kafka_admin, [topic], partitions=3)
    env = rig.limits_env(rate_limits={topic: {"RATE": RATE, "BURST": BURST}})
    support.produce(topic, ((b"hot", f"{i}".encode(), None) for i in range(400)), partition=0)
    processes.extend(rig.start(ns, logs, env, topics=[topic]))

    # When partitions 1 and 2 receive 5 messages a second each meanwhile
    producer = support.producer()
    started = time.time()
    sent = 0
    while time.time() < started + WINDOW + 3.0:
        for partition in (1, 2):
            producer.produce(topic, key=b"cold", value=f"{sent}".encode(), partition=partition)
        sent += 1
        producer.poll(0)
        time.sleep(max(0.0, started + sent / COLD_RATE - time.time()))
    assert producer.flush(30) == 0
    support.wait_until(lambda: sum(1 for m in recorder.handled_counts(ns) if "/0@" not in m) == 2 * sent,
                       timeout=30, what="every cold message handled")

    # Then partition 0 ran at 10/s (±10% over 6 s, after its burst), and every cold message started within 2 s of its production
    starts = recorder.started(ns)
    hot = sorted(at for at, message_id in starts if "/0@" in message_id)
    counts = windows(hot, hot[0] + 1.5, WINDOW, 1)
    cold_latency = {m: at - recorder.facts(ns)[m]["created"] for at, m in starts if "/0@" not in m}
    print(f"\nhot partition: {counts[0]} starts in {WINDOW:.0f} s at a limit of {RATE:.0f}/s, per second "
          f"{per_second(hot, hot[0], hot[0] + WINDOW + 1.5)}; {len(cold_latency)} cold messages, latency max "
          f"{max(cold_latency.values()):.2f} s")
    assert abs(counts[0] - RATE * WINDOW) <= 0.1 * RATE * WINDOW, f"hot partition: {counts[0]} starts in {WINDOW:.0f} s"
    assert len(hot) < 400, "the hot partition is still held at the end"
    slow = {m: round(latency, 2) for m, latency in cold_latency.items() if latency > MAX_COLD_LATENCY}
    assert not slow, f"cold messages waited behind the hot partition: {slow}"
