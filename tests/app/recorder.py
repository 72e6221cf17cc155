"""What the test handlers and hooks saw, written to Redis under the test's namespace so tests can read it."""

from __future__ import annotations

import base64
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
    """Counts the handling of ``message`` (tests read duplicates from the count) and keeps ``facts`` about it."""
    pipe = client().pipeline()
    pipe.hincrby(key("handled"), str(message.id), 1)
    if facts:
        pipe.hset(key("facts"), str(message.id), json.dumps(facts))
    pipe.execute()


def record_started(message: Message) -> None:
    """When a handler began on ``message`` (wall clock): rate tests count handler starts per second."""
    client().rpush(key("started"), f"{time.time():.6f} {message.id}")


def started(ns: str) -> list[tuple[float, str]]:
    """(wall-clock time, message id) of every handler start recorded in the test namespace ``ns``, in order."""
    entries = (entry.decode().split(" ", 1) for entry in client().lrange(key("started", ns), 0, -1))
    return [(float(at), message_id) for at, message_id in entries]


def b64(data: bytes | None) -> str | None:
    """Bytes as JSON can carry them (facts are JSON)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def handled_counts(ns: str) -> dict[str, int]:
    """How often each message id was handled, in the test namespace ``ns``."""
    return {k.decode(): int(v) for k, v in client().hgetall(key("handled", ns)).items()}


def facts(ns: str) -> dict[str, dict]:
    """The facts each handled message recorded (the last handling's), by message id."""
    return {k.decode(): json.loads(v) for k, v in client().hgetall(key("facts", ns)).items()}


def attempts(ns: str, message_id: str) -> list[int]:
    """The attempt numbers a handler saw for ``message_id``, in the order it ran."""
    return [json.loads(a)["attempt"] for a in client().lrange(key(f"attempts:{message_id}", ns), 0, -1)]
