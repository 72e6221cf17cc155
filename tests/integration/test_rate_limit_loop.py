"""The bridge's intake limit in the loop: a fake Kafka and publisher, the real token buckets on Redis."""

from __future__ import annotations

import os
from typing import Iterator

import pytest
import redis

from kafkabridge.consumer.bridge import Bridge
from kafkabridge.consumer.rate_limit import PartitionRateLimit
from kafkabridge.ratelimit import Limit
from kafkabridge.ratelimit.limiter import RateLimiter
from kafkabridge.settings import BridgeSettings
from tests.unit.fake_kafka import FakeClock, FakeConsumer, FakeKafka, FakePublisher

HOT, COLD = ("orders", 0), ("orders", 1)


@pytest.fixture
def limiter(services: None, ns: str) -> Iterator[RateLimiter]:
    client = redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))
    yield RateLimiter(client, kind="bridge", prefix=f"{ns}:ratelimit")
    for key in client.scan_iter(f"{ns}:ratelimit:*", count=1000):
        client.delete(key)


def start(kafka: FakeKafka, publisher: FakePublisher, cause: PartitionRateLimit) -> tuple[Bridge, FakeConsumer]:
    settings = BridgeSettings(group_id="g", batch_size=100, commit_interval=1.0, poll_timeout=0.5, commit_after="publish")
    bridge = Bridge(settings=settings, topics=["orders"], publisher=publisher, consumer_factory=kafka.consumer,
                    causes=[cause], clock=kafka.clock, sleep=kafka.clock.sleep)
    bridge.start()
    kafka.last_consumer.rebalance(assign=[HOT, COLD])
    return bridge, kafka.last_consumer


def test_a_partition_out_of_tokens_is_held_while_the_other_flows_and_nothing_is_lost_or_reordered(
    limiter: RateLimiter, ns: str
) -> None:
    kafka, publisher = FakeKafka(FakeClock()), FakePublisher()
    kafka.produce(HOT, *[b"h"] * 30)
    kafka.produce(COLD, *[b"c"] * 3)
    # a rate of 0 after a burst of 20: the hot partition gets its burst, then nothing until the test says
    cause = PartitionRateLimit(limiter, f"{ns}-g", {"orders": Limit(rate=0.0, burst=20.0)})
    bridge, consumer = start(kafka, publisher, cause)
    for _ in range(5):
        bridge.run_once()

    assert publisher.offsets(HOT) == list(range(20)), "the burst, then held"
    assert publisher.offsets(COLD) == [0, 1, 2], "the other partition flows at its own rate"
    assert HOT in consumer.paused and COLD not in consumer.paused
    calls = publisher.calls

    limiter._buckets._redis.hset(limiter._buckets.key(cause.bucket(HOT)), mapping={"t": "20"})  # tokens come back
    cause._blocked_until.clear()  # the hold's time has come
    for _ in range(5):
        bridge.run_once()
    assert publisher.offsets(HOT) == list(range(30)), "the rest, once each, in order"
    assert HOT not in consumer.paused
    assert publisher.calls - calls <= 3, "a batch per partition, not a publish per message"


def test_tokens_for_a_whole_batch_of_every_partition_are_taken_in_one_round_trip(limiter: RateLimiter, ns: str) -> None:
    cause = PartitionRateLimit(limiter, f"{ns}-g", {"orders": Limit(rate=1000.0, burst=50.0)})
    replies = []
    original = limiter._buckets.take_many

    def counting(requests, **options):  # type: ignore[no-untyped-def]
        replies.append(len(requests))
        return original(requests, **options)

    limiter._buckets.take_many = counting  # type: ignore[method-assign]
    allowed = cause.admit({HOT: 40, COLD: 7, ("payments", 0): 5}, now=0.0)
    assert allowed == {HOT: 40, COLD: 7}, "a topic without a limit is not asked about"
    assert replies == [2], "one pipelined call for both partitions"
