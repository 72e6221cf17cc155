"""The shared token bucket: :func:`~kafkabridge.ratelimit.bucket.take` in one Lua script on Redis.

Keys, one hash per bucket, all under one prefix; the hash tag keeps each bucket in one Redis Cluster slot:

======================================  ======  =====================================================
key                                     type    holds
======================================  ======  =====================================================
``kafkabridge:ratelimit:{NAME}``        HASH    ``t`` tokens left, ``at`` when counted (Redis µs)
======================================  ======  =====================================================

``NAME`` is ``partition|GROUP|TOPIC|PARTITION`` for the bridge's intake and ``handler|TASK`` for a
handler. A bucket nobody took from for ``idle_seconds`` expires (and comes back full).
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Sequence

from redis import Redis

from .bucket import Grant

DEFAULT_PREFIX = "kafkabridge:ratelimit"
DEFAULT_IDLE_SECONDS = 3600.0


class RedisTokenBucket:
    """Takes tokens from named buckets in Redis; many buckets in one round trip."""

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self._redis = redis
        self._prefix = prefix
        self._idle_ms = int(idle_seconds * 1000)
        self._take = redis.register_script(resources.files(__package__).joinpath("lua", "bucket.lua").read_text())

    def key(self, name: str) -> str:
        return f"{self._prefix}:{{{name}}}"

    def take(self, name: str, requested: int, *, rate: float, burst: float, horizon: float = 0.0) -> Grant:
        """Up to ``requested`` tokens of bucket ``name`` (raises RedisError when Redis cannot answer)."""
        return self.take_many([(name, requested, rate, burst)], horizon=horizon)[0]

    def take_many(self, requests: Sequence[tuple[str, int, float, float]], *, horizon: float = 0.0) -> list[Grant]:
        """(name, requested, rate, burst) for each bucket → a grant each, in one pipelined round trip.

        With a ``horizon`` (seconds), tokens due within it are reserved (see :func:`~.bucket.take`).
        """
        pipe = self._redis.pipeline(transaction=False)
        for name, requested, rate, burst in requests:
            self._take(keys=[self.key(name)], args=[rate, burst, requested, self._idle_ms, horizon], client=pipe)
        return [Grant(int(granted), _seconds(wait)) for granted, wait in pipe.execute()]


def _seconds(wait: bytes | str) -> float:
    text = wait.decode() if isinstance(wait, bytes) else wait
    return math.inf if text == "inf" else float(text)
