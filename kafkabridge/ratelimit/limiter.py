"""The one object every process asks for tokens: the shared Redis bucket, with a local fallback.

While Redis answers, every bridge and worker takes from the same buckets (``RedisTokenBucket``).
When it does not, each process falls back to a bucket of its own, logs one warning, tells the hooks,
and goes back to the shared bucket as soon as Redis answers again. A bucket that processes of a kind
share (a handler's, taken by every worker) falls back to ``rate / live instances``, the number of
processes of that kind last seen in the heartbeat registry; a bucket only one process takes from (a
partition's intake bucket: a partition has one consumer in its group) keeps its whole rate.

Operators change limits at run time (:mod:`~kafkabridge.ratelimit.overrides`, written by the Django
admin); every limiter reads them again every ``REFRESH_EVERY`` seconds and publishes the effective
rates it applies. The heartbeat registry:

========================================  ======  ===========================================
``kafkabridge:ratelimit:instances:KIND``  ZSET    process id → last heartbeat (Redis seconds)
========================================  ======  ===========================================
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Callable, Mapping, Sequence

from urllib.parse import urlparse

from redis import Redis
from redis.exceptions import RedisError

from ..errors import ConfigurationError
from ..hooks import HookDispatcher
from .bucket import BucketState, Grant, take
from .limits import Limit
from .overrides import Overrides
from .redis_bucket import DEFAULT_PREFIX, RedisTokenBucket

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 5.0
"""Seconds between a process's heartbeats in the instance registry."""
LIVE_WITHIN = 30.0
"""A process whose last heartbeat is older than this is not counted among the live instances."""
REFRESH_EVERY = 2.0
"""Seconds between reads of the run-time overrides: a change in the admin applies within this (+ a take)."""
RETRY_REDIS_EVERY = 1.0
"""While degraded, seconds between tries of the shared bucket."""

Request = tuple[str, int, float, float]
"""(bucket name, tokens wanted, rate, burst)."""


class RateLimiter:
    """Tokens from shared buckets; a local bucket per name while Redis cannot be reached."""

    def __init__(
        self,
        redis: Redis,
        *,
        kind: str,
        hooks: HookDispatcher | None = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.monotonic,
        shared: bool = True,
    ) -> None:
        """``shared``: processes of this ``kind`` take from the same buckets (False for bridges, each of
        which alone takes from the buckets of the partitions it owns)."""
        self._redis = redis
        self._shared = shared
        self._buckets = RedisTokenBucket(redis, prefix=prefix)
        self._overrides_store = Overrides(redis, prefix=prefix)
        self._kind = kind
        self._hooks = hooks or HookDispatcher()
        self._prefix = prefix
        self._clock = clock
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._live = 1
        self._next_heartbeat = 0.0
        self._overrides: dict[str, dict[str, Any]] = {}
        self._refused: set[str] = set()
        self._next_refresh = 0.0
        self._degraded_since: float | None = None
        self._next_redis_try = 0.0
        self._local: dict[str, BucketState] = {}

    @property
    def _divisor(self) -> int:
        return max(1, self._live) if self._shared else 1

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    def limit(self, name: str, configured: Limit) -> Limit:
        """``configured`` with what an operator changed for ``name`` at run time."""
        self._refresh()
        override = self._overrides.get(name)
        if not override:
            return configured
        try:
            return configured.merged(override)
        except ConfigurationError as error:  # never let an operator's typo stop a bridge or a worker
            if name not in self._refused:
                self._refused.add(name)
                logger.error("rate limiter: ignoring the run-time override of %s (%s); the configured limit applies", name, error)
            return configured

    def take_many(self, requests: Sequence[Request], *, horizon: float = 0.0) -> list[Grant]:
        """A grant per request: from Redis in one round trip, or locally while Redis is unreachable.

        With a ``horizon`` (seconds), tokens due within it are reserved (``Grant.wait`` says when to use them).
        """
        if not requests:
            return []
        now = self._clock()
        if self._degraded_since is None or now >= self._next_redis_try:
            try:
                grants = self._buckets.take_many(requests, horizon=horizon)
            except RedisError as error:
                self._degrade(error, now)
            else:
                self._restore(now)
                self._heartbeat(now)
                return grants
        return [self._take_locally(name, n, rate, burst, now, horizon) for name, n, rate, burst in requests]

    def publish_effective(self, rates: Mapping[str, float]) -> None:
        """Tell the admin which rates this process applies now (best effort)."""
        if not rates or self.degraded:
            return
        try:
            self._overrides_store.publish_effective(rates, at=time.time(), by=self._instance)
        except RedisError:
            pass  # the next take notices the outage

    # -- fallback -------------------------------------------------------------------------------

    def _take_locally(self, name: str, requested: int, rate: float, burst: float, now: float, horizon: float) -> Grant:
        live = self._divisor
        grant, self._local[name] = take(
            self._local.get(name), now=now, rate=rate / live, burst=max(1.0, burst / live), requested=requested, horizon=horizon
        )
        return grant

    def _degrade(self, error: RedisError, now: float) -> None:
        self._next_redis_try = now + RETRY_REDIS_EVERY
        if self._degraded_since is not None:
            return
        self._degraded_since = now
        logger.warning(
            "rate limiter: Redis unreachable (%r); each %s process now limits itself to rate / %d (%s) "
            "until Redis answers again", error, self._kind, self._divisor,
            f"live {self._kind}s last seen" if self._shared else f"each {self._kind}'s buckets are its own",
        )
        self._hooks.emit("on_rate_limit_degraded", self._kind, self._live)

    def _restore(self, now: float) -> None:
        if self._degraded_since is None:
            return
        logger.warning("rate limiter: Redis answers again after %.0fs; back to the shared buckets", now - self._degraded_since)
        self._degraded_since = None
        self._local.clear()
        self._hooks.emit("on_rate_limit_restored", self._kind)

    # -- registry and overrides -----------------------------------------------------------------

    def _heartbeat(self, now: float) -> None:
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + HEARTBEAT_EVERY
        key = f"{self._prefix}:instances:{self._kind}"
        try:
            seconds, _ = self._redis.time()
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(key, {self._instance: seconds})
            pipe.zremrangebyscore(key, "-inf", seconds - LIVE_WITHIN)
            pipe.zcard(key)
            pipe.expire(key, int(LIVE_WITHIN * 10))
            self._live = max(1, int(pipe.execute()[2]))
        except RedisError:
            pass

    def _refresh(self) -> None:
        now = self._clock()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_EVERY
        try:
            self._overrides = self._overrides_store.read()
        except RedisError:
            return  # keep the last overrides known


def limiter_for(kind: str, *, url: str | None, broker_url: str, hooks: HookDispatcher | None = None) -> RateLimiter:
    """This process's limiter of ``kind`` ("bridge" or "worker") on Redis ``url`` (None: the Celery broker)."""
    url = url or broker_url
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"rate limits are shared through Redis, but the Celery broker is {url.split(':')[0]!r}: "
            "set KAFKABRIDGE['RATE_LIMIT_REDIS_URL'] to a Redis URL"
        )
    key = (kind, url)
    if key not in _limiters:
        # short timeouts: a Redis that does not answer must not stall the loop; the limiter falls back
        client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _limiters[key] = RateLimiter(client, kind=kind, hooks=hooks, shared=kind != "bridge")
    return _limiters[key]


_limiters: dict[tuple[str, str], RateLimiter] = {}


