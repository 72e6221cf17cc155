"""What the test handlers and hooks saw, written to Redis under the test's namespace so tests can read it."""

from __future__ import annotations

import json
import os
import time
from functools import cache

import redis

from kafkabridge import Message


def namespace() -> str:
    return os.environ.get("KBTEST_NS", "kbtest")


def topic(name: str) -> str:
    return f"{namespace()}.{name}"


@cache
def client() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))


def key(name: str, ns: str | None = None) -> str:
    return f"{ns or namespace()}:{name}"


def record_attempt(message: Message) -> None:
    client().rpush(key(f"attempts:{message.id}"), json.dumps({"attempt": message.attempt, "at": time.time()}))


def record_handled(message: Message, **facts: object) -> None:
    pipe = client().pipeline()
    pipe.hincrby(key("handled"), str(message.id), 1)
    if facts:
        pipe.hset(key("facts"), str(message.id), json.dumps(facts))
    pipe.execute()
