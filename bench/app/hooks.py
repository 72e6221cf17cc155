from __future__ import annotations

import os
import time
from functools import cache
from typing import Sequence

import redis

from kafkabridge import Hooks, Message


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["KB_BENCH_LATENCY_REDIS"])


class LatencyHooks(Hooks):
    """When KB_BENCH_LATENCY_KEY is set, records latency from the Kafka timestamp, in milliseconds:
    to handler start (worker) and to the confirmed publish (bridge, under ``<key>:published``)."""

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
