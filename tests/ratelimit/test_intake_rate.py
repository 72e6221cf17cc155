"""The bridge's intake limit lets its configured rate through, also when the rate is many times the burst."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support
from tests.ratelimit import rig
from tests.ratelimit.app.hooks import published
from tests.ratelimit.rates import per_second, windows

RATE, BURST = 40.0, 4.0
WINDOW = 5.0


def test_a_held_partition_is_published_at_its_configured_rate_when_the_burst_is_small(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path
) -> None:
    # Given a partition limited to 40/s with a burst of 4 at the bridge, and a backlog
    topic = f"{ns}.timed"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(rate_limits={topic: {"RATE": RATE, "BURST": BURST}})
    support.produce(topic, ((b"k", b"{}", None) for _ in range(int(RATE * (WINDOW + 3)))), partition=0)

    # When the bridge runs (publishes are counted at the bridge: no worker, no worker speed in the measurement)
    processes.extend(rig.start(ns, logs, env, topics=[topic], workers=0))
    first = support.wait_until(lambda: published(ns), timeout=30, what="the first publish")[0]
    support.wait_until(lambda: time.time() > first + WINDOW + 1.5, timeout=30, what="the measured window")

    # Then it is published at 40/s (±10% over 5 s, after the first second)
    times = published(ns)
    count = windows(times, first + 1.0, WINDOW, 1)[0]
    facts = (f"rate {RATE:g}/s, burst {BURST:g}: {count} published in {WINDOW:g} s, per second "
             f"{per_second(times, first, first + WINDOW + 1)} (POLL_TIMEOUT 0.2 s)")
    print(f"\n{facts}")
    assert abs(count - RATE * WINDOW) <= 0.1 * RATE * WINDOW, facts
