"""Limits changed at run time: written by the operator console, read by every limiter within seconds.

=======================================  ======  =============================================
``kafkabridge:ratelimit:overrides``      HASH    limit name → JSON of the changed fields
``kafkabridge:ratelimit:effective``      HASH    bucket name → JSON {rate, at, by}: what runs now
=======================================  ======  =============================================

Limit names: ``topic:TOPIC`` (the bridge's intake, per partition) and ``handler:TASK_NAME``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from redis import Redis

from .redis_bucket import DEFAULT_PREFIX

FIELDS = ("rate", "burst", "max_rate", "lag_threshold", "lag_scale")


class Overrides:
    """The run-time overrides and the effective rates, in Redis."""

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self.key = f"{prefix}:overrides"
        self.effective_key = f"{prefix}:effective"

    def set(self, name: str, values: Mapping[str, Any]) -> None:
        """Make ``values`` (fields of :class:`~kafkabridge.ratelimit.limits.Limit`; None leaves one as configured) apply to ``name``."""
        fields = {k: float(v) for k, v in values.items() if k in FIELDS and v is not None}
        self._redis.hset(self.key, name, json.dumps(fields))

    def remove(self, name: str) -> None:
        self._redis.hdel(self.key, name)

    def read(self) -> dict[str, dict[str, Any]]:
        return {_text(name): json.loads(value) for name, value in self._redis.hgetall(self.key).items()}

    def effective(self) -> dict[str, dict[str, Any]]:
        """Bucket name → {rate, at, by} as the processes last published them."""
        return {_text(name): json.loads(value) for name, value in self._redis.hgetall(self.effective_key).items()}

    def publish_effective(self, rates: Mapping[str, float], *, at: float, by: str) -> None:
        self._redis.hset(self.effective_key, mapping={name: json.dumps({"rate": rate, "at": at, "by": by}) for name, rate in rates.items()})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
