"""The limiter's Redis stops for 20 s mid-run: each process falls back to a local bucket of rate / live
instances, nothing is lost, and the shared bucket is used again once Redis is back (item 5).

The limiter gets a Redis of its own (``RATE_LIMIT_REDIS_URL``, a redis-server this test starts and stops
on a free port): the Celery broker and the completion ledger stay up, so the test sees the limiter's
behaviour alone, and other test runs on this machine are not disturbed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
from confluent_kafka.admin import AdminClient

from kafkabridge.ratelimit.limiter import HEARTBEAT_EVERY
from kafkabridge.ratelimit.redis_bucket import DEFAULT_PREFIX
from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.app.hooks import limiter_events
from tests.ratelimit.rates import count_between, per_second

RATE = 10.0
OUTAGE = 20.0
AFTER = 3.0
"""Seconds of running after the outage, with a backlog left."""
BEFORE_AT_MOST = 12.0
"""Seconds before the outage, at most: until each worker process has had a heartbeat since both were in the
registry (heartbeats come with takes, every HEARTBEAT_EVERY seconds), so that each knows how many are live."""
FALLBACK_TOLERANCE = 0.20
"""The issue states no bound for the fallback rate; a local bucket per process, restarted full, within ±20%."""
TRICKLE = 6.0
"""Messages a second to the throttled handler: below its limit of 10/s, above each worker's fallback share of 5/s."""


class LimiterRedis:
    """A redis-server of this test alone, on a free port, without persistence; ``down()`` and ``up()`` stop and start it."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--daemonize", "yes", "--dir", str(directory),
                      "--logfile", str(directory / "redis.log"), "--pidfile", str(directory / "redis.pid")]

    def up(self) -> None:
        subprocess.run(self._argv, check=True, timeout=30)
        support.wait_until(lambda: support.port_open(self.port), timeout=30, what=f"redis-server on port {self.port}")

    def down(self) -> None:
        if support.port_open(self.port):
            subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], timeout=30)
        support.wait_until(lambda: not support.port_open(self.port), timeout=30, what=f"redis-server on port {self.port} to stop")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def limiter_redis(tmp_path: Path) -> Iterator[LimiterRedis]:
    (tmp_path / "redis").mkdir()
    server = LimiterRedis(tmp_path / "redis")
    server.up()
    yield server
    server.down()


def steady(topic: str, per_second: float) -> Callable[[], int]:
    """A producer to ``topic`` at ``per_second``, advanced by each call (returns how many were sent so far)."""
    producer, started, sent = support.producer(), time.time(), [0]

    def tick() -> int:
        while sent[0] < (time.time() - started) * per_second:
            producer.produce(topic, key=b"steady", value=b"{}")
            sent[0] += 1
        producer.poll(0)
        return sent[0]

    tick.flush = lambda: producer.flush(30)  # type: ignore[attr-defined]
    return tick


def test_with_the_limiters_redis_down_for_20_s_processing_goes_on_at_the_fallback_rate_and_nothing_is_lost(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, limiter_redis: LimiterRedis
) -> None:
    # Given one bridge limiting a partition's backlog to 10/s, and two worker processes sharing a handler limit of
    # 10/s while 6 messages a second arrive for that handler; the limiter's buckets in their own Redis
    held, throttled = f"{ns}.timed", f"{ns}.throttled"
    support.create_topics(kafka_admin, [held], partitions=1)
    support.create_topics(kafka_admin, [throttled], partitions=1)
    env = rig.limits_env(rate_limits={held: {"RATE": RATE, "BURST": RATE}}, throttle={"RATE": RATE, "BURST": 2},
                         redis_url=limiter_redis.url)
    backlog = int(RATE * (BEFORE_AT_MOST + OUTAGE + AFTER + 5.0))  # some left once Redis is back, whatever the timing
    support.produce(held, ((b"held", b"{}", None) for _ in range(backlog)), partition=0)
    processes.extend(rig.start(ns, logs, env, topics=[held, throttled], workers=2, concurrency=1))
    bridge = next(process for process in processes if process.name == "bridge")
    tick = steady(throttled, TRICKLE)

    def starts(topic: str) -> list[float]:
        return sorted(at for at, message_id in recorder.started(ns) if message_id.startswith(f"{topic}/"))

    first = support.wait_until(lambda: tick() and starts(held), timeout=30, what="the backlog flowing")[0]
    registry = limiter_redis.client()
    both_seen = support.wait_until(lambda: tick() and registry.zcard(f"{DEFAULT_PREFIX}:instances:worker") == 2 and time.time(),
                                   timeout=BEFORE_AT_MOST, what="both worker processes in the registry")
    support.wait_until(lambda: tick() and time.time() > both_seen + HEARTBEAT_EVERY + 1.0, timeout=BEFORE_AT_MOST,
                       what="a heartbeat of each worker process since")

    # When the limiter's Redis is stopped for 20 s, then started again (empty: no buckets, no registry)
    stopping_at = time.time()
    limiter_redis.down()
    down_at = time.time()
    support.wait_until(lambda: tick() and time.time() > down_at + OUTAGE, timeout=OUTAGE + 10, what="the outage")
    starting_at = time.time()
    limiter_redis.up()
    up_at = time.time()
    support.wait_until(lambda: tick() and time.time() > up_at + AFTER, timeout=AFTER + 10, what="running after the outage")

    # Then the backlog went on at the fallback rate (10/s / one bridge) and the throttled handler kept up with its
    # arrivals (10/s / two workers = 5/s each); every message of both topics was handled, once
    sent = tick()
    tick.flush()  # type: ignore[attr-defined]
    support.wait_until(lambda: len(recorder.handled_counts(ns)) >= backlog + sent, timeout=60, what="every message handled")
    bucket = limiter_redis.client()
    support.wait_until(lambda: bucket.hget(f"{DEFAULT_PREFIX}:{{partition|{ns}|{held}|0}}", "at"), timeout=10,
                       what="the bridge's shared bucket written again")
    held_starts, throttled_starts = starts(held), starts(throttled)
    during = count_between(held_starts, down_at + 2.0, up_at - 1.0) / (up_at - 1.0 - down_at - 2.0)
    events = limiter_events(ns)
    print(f"\nbacklog starts per second around the outage ({down_at - first:.1f} s to {up_at - first:.1f} s): "
          f"{per_second(held_starts, first, up_at + AFTER)}; during it {during:.1f}/s; throttled handler per second: "
          f"{per_second(throttled_starts, down_at - 3, up_at + 3)}; limiter events: "
          f"{[(e['event'], e['kind'], e.get('live'), round(e['at'] - down_at, 1)) for e in events]}")
    assert abs(during - RATE) <= FALLBACK_TOLERANCE * RATE, f"{during:.1f}/s while Redis was down; the fallback is {RATE:g}/s"
    handled = recorder.handled_counts(ns)
    assert len(handled) == backlog + sent and set(handled.values()) == {1}, "every message handled exactly once"
    gaps = [b - a for a, b in zip(throttled_starts, throttled_starts[1:]) if down_at <= a <= up_at]
    assert max(gaps) < 2.0, f"the throttled handler stalled for {max(gaps):.1f} s during the outage"

    # and each process said so once, with the live count the registry last gave it, then went back to the shared buckets
    degraded = [e for e in events if e["event"] == "degraded"]
    restored = [e for e in events if e["event"] == "restored"]
    assert sorted((e["kind"], e["live"]) for e in degraded) == [("bridge", 1), ("worker", 2), ("worker", 2)]
    assert sorted(e["kind"] for e in restored) == ["bridge", "worker", "worker"]
    assert all(stopping_at <= e["at"] <= down_at + 3.0 for e in degraded), "degraded at the start of the outage"
    assert all(starting_at <= e["at"] <= up_at + 3.0 for e in restored), "restored within seconds of Redis' return"
    assert bridge.log().count("rate limiter: Redis unreachable") == 1
    assert bucket.exists(f"{DEFAULT_PREFIX}:{{handler|{ns}.throttled}}"), "the workers' shared bucket is used again"
