"""The lag-adaptive intake rate: above the lag threshold the effective rate rises toward MAX_RATE, and it
falls back toward RATE as the lag drains (item 4). The formula itself: tests/unit/test_rate_limits.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from kafkabridge.ratelimit.overrides import Overrides
from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.rates import per_second

RATE, MAX_RATE = 10.0, 100.0
LIMIT = {"RATE": RATE, "BURST": RATE, "MAX_RATE": MAX_RATE, "LAG_THRESHOLD": 20, "LAG_SCALE": 100}
TRICKLE = 4.0
"""Messages per second produced all along, below RATE: the partition always has traffic."""
BACKLOG = 400


class Trickle:
    """Produces ``TRICKLE`` messages a second to partition 0 whenever :meth:`tick` is called often enough."""

    def __init__(self, topic: str) -> None:
        self._topic, self._producer, self._started, self.sent = topic, support.producer(), time.time(), 0

    def close(self) -> None:
        self._producer.flush(30)

    def tick(self) -> None:
        while self.sent < (time.time() - self._started) * TRICKLE:
            self._producer.produce(self._topic, key=b"trickle", value=b"{}", partition=0)
            self.sent += 1
        self._producer.poll(0)


def test_above_the_lag_threshold_the_effective_rate_rises_then_falls_back_as_the_lag_drains(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, broker: redis.Redis
) -> None:
    # Given a partition limited to 10/s, rising toward 100/s past a lag of 20, with a trickle of 4 messages a second
    topic = f"{ns}.timed"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(rate_limits={topic: LIMIT})
    processes.extend(rig.start(ns, logs, env, topics=[topic]))
    bucket = f"partition|{ns}|{topic}|0"
    effective = Overrides(broker)
    published: list[tuple[float, float]] = []  # (when the bridge published it, the effective rate)
    trickle = Trickle(topic)

    def watch(condition) -> bool:  # type: ignore[no-untyped-def]
        trickle.tick()
        entry = effective.effective().get(bucket)
        if entry and (not published or entry["at"] != published[-1][0]):
            published.append((entry["at"], entry["rate"]))
        return bool(published) and condition(published[-1][1])

    support.wait_until(lambda: watch(lambda rate: rate == RATE), timeout=30, what="the base rate published", interval=0.2)

    # When a backlog of 400 arrives at once
    support.produce(topic, ((b"backlog", b"{}", None) for _ in range(BACKLOG)), partition=0)
    burst_at = time.time()

    # Then the effective rate rises well above the base rate, and the backlog drains faster than the base rate allows
    support.wait_until(lambda: watch(lambda rate: rate >= 3 * RATE), timeout=30, what="the effective rate to rise", interval=0.2)
    support.wait_until(lambda: watch(lambda _: len(recorder.handled_counts(ns)) >= BACKLOG + trickle.sent), timeout=60,
                       what="the backlog drained", interval=0.2)
    drained_at = time.time()
    peak = max(rate for _, rate in published)
    # and once the lag has drained, it falls back: at least half of the way from its peak to the base rate
    support.wait_until(lambda: watch(lambda rate: rate <= RATE + (peak - RATE) / 2), timeout=40,
                       what="the effective rate to fall back", interval=0.2)

    trickle.close()
    times = sorted(at for at, _ in recorder.started(ns))
    drain_rate = BACKLOG / (drained_at - burst_at)
    print(f"\neffective rates published (s after the backlog: rate): "
          f"{[(round(at - burst_at, 1), round(rate, 1)) for at, rate in published]}; backlog drained at {drain_rate:.1f}/s; "
          f"starts per second from the backlog: {per_second(times, burst_at, drained_at)}")
    assert drain_rate > 2 * RATE, f"the backlog drained at {drain_rate:.1f}/s, not above the base rate"
    assert published[-1][1] < peak and published[-1][1] >= RATE
    assert all(rate < MAX_RATE for _, rate in published)


def test_the_published_effective_rate_falls_back_when_the_lag_is_gone_even_without_new_traffic(ns: str, services: None) -> None:
    """What the admin shows ("effective now") must follow the lag too when nothing arrives any more.

    The cause on the real limiter and Redis, driven with explicit times: lag samples as the bridge takes
    them every 2 s, and admit() as every loop turn calls it (with nothing to offer once the backlog is gone).
    """
    from kafkabridge.consumer.rate_limit import PartitionRateLimit
    from kafkabridge.ratelimit import Limit
    from kafkabridge.ratelimit.limiter import RateLimiter

    client = recorder.client()
    limiter = RateLimiter(client, kind="bridge", prefix=f"{ns}:ratelimit")  # keys under the test's namespace
    cause = PartitionRateLimit(limiter, ns, {"orders": Limit(rate=RATE, max_rate=MAX_RATE, lag_threshold=0, lag_scale=100)})
    partition = ("orders", 0)
    published = Overrides(client, prefix=f"{ns}:ratelimit")

    # Given a partition 1,000 messages behind: its effective rate is near the maximum, and published
    cause.lag({partition: 1000}, now=0.0)
    cause.admit({partition: 50}, now=0.0)
    assert published.effective()[cause.bucket(partition)]["rate"] > 0.9 * MAX_RATE

    # When the lag is gone for ten time constants and nothing new arrives (the loop keeps turning)
    for step in range(1, 51):
        cause.lag({partition: 0}, now=2.0 * step)
        cause.admit({}, now=2.0 * step)

    # Then the rate published for the admin is back at the base rate
    assert published.effective()[cause.bucket(partition)]["rate"] == pytest.approx(RATE, abs=1.0)
