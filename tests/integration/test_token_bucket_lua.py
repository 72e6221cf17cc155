"""bucket.lua on a real Redis gives what the pure function gives, for the same cases."""

from __future__ import annotations

import math
import os
from typing import Iterator

import pytest
import redis
from redis.crc import key_slot

from kafkabridge.ratelimit import BucketState, RedisTokenBucket, take
from tests.support import wait_until


@pytest.fixture
def client(services: None) -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))


@pytest.fixture
def bucket(client: redis.Redis, ns: str) -> Iterator[RedisTokenBucket]:
    yield RedisTokenBucket(client, prefix=f"{ns}:ratelimit")
    for key in client.scan_iter(f"{ns}:ratelimit:*", count=1000):
        client.delete(key)


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def plant(client: redis.Redis, bucket: RedisTokenBucket, name: str, tokens: float, seconds_ago: float) -> float:
    """Put a bucket state in Redis as if counted ``seconds_ago``; returns that time (Redis clock)."""
    at = redis_now(client) - seconds_ago
    client.hset(bucket.key(name), mapping={"t": str(tokens), "at": str(int(at * 1e6))})
    return at


CASES = [  # (tokens, seconds ago, rate, burst, requested)
    (0.0, 0.5, 10.0, 50.0, 10),     # refill by elapsed time
    (0.0, 1000.0, 10.0, 7.0, 100),  # capped at the burst
    (2.5, 0.0, 4.0, 10.0, 5),       # partial grant, wait for the next token
    (0.0, 8.0, 0.25, 5.0, 1),       # a fractional rate
    (3.0, 5.0, 0.0, 10.0, 5),       # zero rate: what is there, then never again
    (1.0, -10.0, 10.0, 10.0, 3),    # a clock going backwards (counted "in the future")
]  # with a horizon, and from a debt, too: reserved slots


@pytest.mark.parametrize("horizon", [0.0, 30.0])
@pytest.mark.parametrize("tokens, ago, rate, burst, requested", CASES + [(-5.0, 0.0, 10.0, 2.0, 1), (-500.0, 0.0, 10.0, 2.0, 1)])
def test_the_script_grants_what_the_pure_function_grants(
    client: redis.Redis, bucket: RedisTokenBucket, tokens: float, ago: float, rate: float, burst: float, requested: int,
    horizon: float,
) -> None:
    at = plant(client, bucket, "b", tokens, ago)
    grant = bucket.take("b", requested, rate=rate, burst=burst, horizon=horizon)
    expected, _ = take(BucketState(tokens, at), now=redis_now(client), rate=rate, burst=burst, requested=requested, horizon=horizon)
    assert grant.granted == expected.granted
    if math.isinf(expected.wait):
        assert math.isinf(grant.wait)
    else:
        assert grant.wait == pytest.approx(expected.wait, abs=0.05)


def test_a_new_bucket_starts_full_and_refills_on_redis_time(bucket: RedisTokenBucket) -> None:
    assert bucket.take("fresh", 10, rate=20.0, burst=4.0).granted == 4
    empty = bucket.take("fresh", 1, rate=20.0, burst=4.0)
    assert empty.granted == 0 and 0 < empty.wait <= 0.05
    wait_until(lambda: bucket.take("fresh", 1, rate=20.0, burst=4.0).granted == 1, timeout=5, what="a token to come back", interval=0.01)


def test_many_buckets_are_taken_from_in_one_round_trip(bucket: RedisTokenBucket) -> None:
    grants = bucket.take_many([("p0", 5, 1.0, 3.0), ("p1", 2, 1.0, 3.0), ("p2", 0, 1.0, 3.0)])
    assert [g.granted for g in grants] == [3, 2, 0]


def test_the_script_runs_again_after_redis_forgot_it(client: redis.Redis, bucket: RedisTokenBucket) -> None:
    client.script_flush()
    assert bucket.take("x", 1, rate=1.0, burst=1.0).granted == 1


def test_an_idle_bucket_expires_and_keys_are_cluster_safe(client: redis.Redis, bucket: RedisTokenBucket) -> None:
    bucket.take("partition|g|orders|0", 1, rate=1.0, burst=1.0)
    key = bucket.key("partition|g|orders|0")
    assert 0 < client.pttl(key) <= 3600 * 1000
    assert key.endswith("{partition|g|orders|0}") and key_slot(key.encode()) == key_slot(b"{partition|g|orders|0}")
