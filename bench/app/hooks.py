from __future__ import annotations

import os
import time
from collections import deque
from functools import cache
from typing import Sequence

import redis

from kafkabridge import Hooks, Message


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["KB_BENCH_LATENCY_REDIS"])


class LatencyHooks(Hooks):
    """When KB_BENCH_LATENCY_KEY is set, records latency from the Kafka timestamp, in milliseconds:
    to handler start (worker, under ``<key>``), to the confirmed publish (bridge, under ``<key>:published``)
    and to the offset commit that covers the message (bridge, under ``<key>:committed``, each entry
    ``"<kafka timestamp ms> <latency ms>"`` so that readers can leave out a warm-up by time)."""

    def __init__(self) -> None:
        self._published: dict[tuple[str, int], deque[tuple[int, float]]] = {}
        """Per partition, (offset, Kafka timestamp ms) of published messages not yet covered by a commit."""

    def on_handler_started(self, message: Message, handler: str) -> None:
        key = os.environ.get("KB_BENCH_LATENCY_KEY")
        if key and message.timestamp is not None:
            _client().rpush(key, time.time() * 1000 - message.timestamp.timestamp() * 1000)

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        key = os.environ.get("KB_BENCH_LATENCY_KEY")
        if not key:
            return
        now = time.time() * 1000
        stamped = []
        for m in messages:
            if m.timestamp is None:
                continue
            kafka_ms = m.timestamp.timestamp() * 1000
            stamped.append(now - kafka_ms)
            self._published.setdefault((m.topic, m.partition), deque()).append((m.offset, kafka_ms))
        if stamped:
            _client().rpush(f"{key}:published", *stamped)

    def on_offsets_committed(self, offsets: dict[tuple[str, int], int]) -> None:
        key = os.environ.get("KB_BENCH_LATENCY_KEY")
        if not key:
            return
        now = time.time() * 1000
        covered = []
        for partition, committed in offsets.items():
            waiting = self._published.get(partition)
            while waiting and waiting[0][0] < committed:
                _, kafka_ms = waiting.popleft()
                covered.append(f"{kafka_ms:.3f} {now - kafka_ms:.3f}")
        if covered:
            _client().rpush(f"{key}:committed", *covered)
