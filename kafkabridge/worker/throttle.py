"""A handler's rate limit across all workers: a token before each run, or a wait that is not an attempt.

The option is ``@kafka_handler(..., throttle=Limit(rate=50, burst=10))`` (Celery's own ``rate_limit``
means something else: a limit per worker process). Without a token now, the task waits for the next
one in its pool slot when that is at most ``MAX_WAIT_IN_SLOT`` seconds away: the pool slots are then
the gate, the backlog stays in the broker's queue, and a limit changed at run time applies at once.
A longer wait (a low rate) schedules the task again with the bucket's countdown instead (a Celery
retry goes to the back of the queue, so it is only worth it when the wait is long). A wait uses none
of the retry budget, is logged at debug level only, and is reported through ``Hooks.on_rate_limited``.

A process does not go to Redis for every run: it takes a small lease of tokens at once (at most
``LEASE_SECONDS`` of the rate, the size growing while its leases get used up and shrinking while they
expire unused) and hands them to its next runs until the lease is used or expires. A limit that binds
at a low rate keeps one token per round trip (the lease cannot exceed ``rate * LEASE_SECONDS``); a limit
that does not bind costs one round trip per lease instead of per run. Tokens of an expired lease are
not given back: a process that stops getting work wastes at most one lease.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from .. import runtime
from ..ratelimit.limiter import RateLimiter, limiter_for
from ..ratelimit.limits import Limit

logger = logging.getLogger(__name__)

PUBLISH_EFFECTIVE_EVERY = 5.0
MAX_WAIT_IN_SLOT = 1.0
"""Seconds a task may wait for a token in its pool slot before it schedules itself again instead."""
LEASE_SECONDS = 0.05
"""A lease holds at most this many seconds' worth of the rate and is good for this long."""
MAX_LEASE = 256
"""Tokens in one lease at most, whatever the rate."""


class Throttle:
    """Takes one token per handler run from the handler's shared bucket."""

    def __init__(self, limiter: RateLimiter, handler: str, limit: Limit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = limiter
        self._clock = clock
        self._handler = handler
        self._limit = limit
        self._next_publish = 0.0
        self._leased = 0
        self._lease_ends = 0.0
        self._lease_size = 1

    @classmethod
    def of(cls, task: Any, limit: Limit) -> Throttle:
        """The handler's throttle in this process, made once: it remembers when it last published the
        effective rate, so a new one per task would write that rate to Redis on every run."""
        key = (task.name, limit)
        if key not in _throttles:
            settings = runtime.current().settings
            limiter = limiter_for(
                "worker", url=settings.rate_limit_redis_url, broker_url=str(task.app.conf.broker_url or ""),
                hooks=runtime.current().hooks,
            )
            _throttles[key] = cls(limiter, task.name, limit)
        return _throttles[key]

    def take(self, *, max_wait: float = MAX_WAIT_IN_SLOT, sleep: Callable[[float], None] = time.sleep, on_wait: Callable[[float], None] = lambda _: None) -> float:
        """Take a token, waiting up to ``max_wait`` seconds for it here (``on_wait(seconds)`` is told of
        each such wait); 0 when taken, otherwise the seconds until the next one (inf: the rate is 0) for
        a countdown retry."""
        if self._leased and self._clock() < self._lease_ends:
            self._leased -= 1
            return 0.0
        self._resize_lease()
        deadline = self._clock() + max_wait
        while True:
            limit = self._limiter.limit(f"handler:{self._handler}", self._limit)  # a change applies at once
            bucket = f"handler|{self._handler}"
            wanted = max(1, min(self._lease_size, int(limit.rate * LEASE_SECONDS), int(limit.capacity)))
            grant = self._limiter.take_many([(bucket, wanted, limit.rate, limit.capacity)])[0]
            self._publish(bucket, limit.rate)
            if grant.granted:
                self._leased, self._lease_ends = grant.granted - 1, self._clock() + LEASE_SECONDS
                return 0.0
            if self._clock() + grant.wait > deadline:
                return grant.wait
            on_wait(grant.wait)
            sleep(grant.wait)

    def _resize_lease(self) -> None:
        """Grow the lease while leases get used up, shrink it while they expire with tokens left."""
        if self._leased:
            self._lease_size = max(1, self._lease_size // 2)
            self._leased = 0
        else:
            self._lease_size = min(MAX_LEASE, self._lease_size * 2)

    def _publish(self, bucket: str, rate: float) -> None:
        now = self._clock()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_EFFECTIVE_EVERY
            self._limiter.publish_effective({bucket: rate})


_throttles: dict[tuple[str, Limit], Throttle] = {}


def bounded(wait: float, room: float) -> float:
    """A wait as a countdown: never past what the broker's visibility timeout leaves, never infinite."""
    return min(wait, room) if math.isfinite(wait) else room
