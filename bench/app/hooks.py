from __future__ import annotations

import os
import time
from functools import cache

import redis

from typing import Sequence

from kafkabridge import Hooks, Message


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["KB_BENCH_LATENCY_REDIS"])


class LatencyHooks(Hooks):
    """When KB_BENCH_LATENCY_KEY is set, records Kafka timestamp → handler start, in milliseconds."""

    def on_handler_started(self, message: Message, handler: str) -> None:
        key = os.environ.get("KB_BENCH_LATENCY_KEY")
        if key and message.timestamp is not None:
            _client().rpush(key, time.time() * 1000 - message.timestamp.timestamp() * 1000)

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        key = os.environ.get("KB_BENCH_LATENCY_KEY")
        now = time.time() * 1000
        stamped = [now - m.timestamp.timestamp() * 1000 for m in messages if m.timestamp is not None]
        if key and stamped:
            _client().rpush(f"{key}:published", *stamped)
