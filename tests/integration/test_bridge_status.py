"""Live bridge status: real ``runbridge`` processes publish their status to Redis; ``live_bridges`` reads it.

The bridges publish every 0.5 s here (``KAFKABRIDGE_STATUS_INTERVAL``), so a status expires 1.5 s after
its last heartbeat. Statuses of other tests' bridges share the Redis database: each test looks at its
own consumer group only.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient

from kafkabridge.observability.bridges import BridgeStatus, live_bridges
from kafkabridge.settings import BridgeSettings
from tests import support

INTERVAL = 0.5
SETTINGS = BridgeSettings(completion_redis_url=os.environ["CELERY_BROKER_URL"])  # where runbridge publishes: the broker


def start(ns: str, topic: str, logs: Path) -> support.ServiceProcess:
    env = support.process_env(ns, extra={"KAFKABRIDGE_STATUS_INTERVAL": str(INTERVAL)})
    return support.start_bridge(ns, [topic], logs, env=env)


def of_group(group: str) -> list[BridgeStatus]:
    return [bridge for bridge in live_bridges(SETTINGS) if bridge.group == group]


def test_a_running_bridge_is_listed_with_its_partitions_and_their_lag_and_a_clean_stop_removes_it(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic], partitions=2)
    before = time.time()
    bridge = start(ns, topic, logs)
    bridges.append(bridge)

    [status] = support.wait_until(
        lambda: [b for b in of_group(ns) if len(b.partitions) == 2 and all(p.lag is not None for p in b.partitions)],
        timeout=30, what="the bridge's status with both partitions measured",
    )

    assert status.pid == bridge.process.pid and status.host and status.instance
    assert before - 1 <= status.started_at <= status.last_heartbeat <= time.time() + 1
    assert [(p.topic, p.partition, p.lag, p.effective_rate, p.held) for p in status.partitions] == [
        (topic, 0, 0, None, ()), (topic, 1, 0, None, ()),
    ]
    assert status.state == "running"
    later = support.wait_until(lambda: [b for b in of_group(ns) if b.last_heartbeat > status.last_heartbeat],
                               timeout=5, what="a newer heartbeat")
    assert later[0].instance == status.instance

    assert bridge.stop() == 0
    assert of_group(ns) == [], "a clean stop removes the status at once, before its TTL"


def test_a_killed_bridge_disappears_when_its_status_expires(ns: str, kafka_admin: AdminClient, bridges: list, logs: Path) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic], partitions=1)
    bridge = start(ns, topic, logs)
    bridges.append(bridge)
    support.wait_until(lambda: [b for b in of_group(ns) if b.partitions], timeout=30, what="the bridge's status")

    bridge.signal(signal.SIGKILL)
    bridge.process.wait(10)
    killed = time.monotonic()

    assert of_group(ns), "a killed bridge's status outlives it until its TTL"
    support.wait_until(lambda: not of_group(ns), timeout=10, what="the killed bridge's status to expire")
    gone_after = time.monotonic() - killed
    assert gone_after <= 3 * INTERVAL + 1.0, f"expired {gone_after:.1f}s after the kill"


def test_live_bridges_raises_redis_errors_when_redis_is_unreachable() -> None:
    unreachable = BridgeSettings(completion_redis_url="redis://127.0.0.1:1/0")
    try:
        live_bridges(unreachable)
    except redis.RedisError:
        return
    raise AssertionError("live_bridges returned with Redis unreachable")


def test_the_bridge_reports_losing_the_completion_ledgers_redis_once_and_regaining_it(ns: str) -> None:
    """A fake Kafka drives the loop; the ledger is real: on the test Redis, then on an unreachable one, then back."""
    from kafkabridge.completion import CompletionLedger
    from kafkabridge.consumer.bridge import Bridge
    from kafkabridge.consumer.completion import CompletionTracking
    from kafkabridge.hooks import HookDispatcher, Hooks
    from tests.unit.fake_kafka import FakeClock, FakeKafka, FakePublisher

    class Seen(Hooks):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        def on_service_error(self, service: str, error: BaseException) -> None:
            self.events.append(("error", service))

        def on_service_restored(self, service: str) -> None:
            self.events.append(("restored", service))

    from redis.backoff import NoBackoff
    from redis.retry import Retry

    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))  # fail fast, no retries
    down = CompletionLedger(unreachable, group="g", prefix=f"{ns}:completion")
    up = CompletionLedger(redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")), group="g",
                          prefix=f"{ns}:completion")
    tracking = CompletionTracking(up, timeouts={"orders": 60.0})
    kafka, seen = FakeKafka(FakeClock()), Seen()
    bridge = Bridge(settings=BridgeSettings(group_id="g", commit_interval=1.0), topics=["orders"], publisher=FakePublisher(),
                    consumer_factory=kafka.consumer, completion=tracking, hooks=HookDispatcher([seen]),
                    clock=kafka.clock, sleep=kafka.clock.sleep)
    bridge.start()
    kafka.last_consumer.rebalance(assign=[("orders", 0)])
    kafka.produce(("orders", 0), b"v")
    bridge.run_once()  # published and claimed: in flight, so every commit interval asks the ledger
    assert seen.events == []

    tracking.ledger = down
    for _ in range(3):
        kafka.clock.advance(1.0)
        bridge.run_once()
    assert seen.events == [("error", "redis")], "reported once, however many checks fail"

    tracking.ledger = up
    kafka.clock.advance(1.0)
    bridge.run_once()
    assert seen.events == [("error", "redis"), ("restored", "redis")]
    for key in up._redis.scan_iter(f"{ns}:completion:*", count=1000):
        up._redis.delete(key)
