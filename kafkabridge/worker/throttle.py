"""A handler's rate limit across all workers: a token before each run, or a wait that is not an attempt.

The option is ``@kafka_handler(..., throttle=Limit(rate=50, burst=10))`` (Celery's own ``rate_limit``
means something else: a limit per worker process). Without a token now, the task waits for the next
one in its pool slot when that is at most ``MAX_WAIT_IN_SLOT`` seconds away: the pool slots are then
the gate, the backlog stays in the broker's queue, and a limit changed at run time applies at once.
A longer wait (a low rate) schedules the task again with the bucket's countdown instead (a Celery
retry goes to the back of the queue, so it is only worth it when the wait is long). A wait uses none
of the retry budget, is logged at debug level only, and is reported through ``Hooks.on_rate_limited``.
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


class Throttle:
    """Takes one token per handler run from the handler's shared bucket."""

    def __init__(self, limiter: RateLimiter, handler: str, limit: Limit) -> None:
        self._limiter = limiter
        self._handler = handler
        self._limit = limit
        self._next_publish = 0.0

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
        deadline = time.monotonic() + max_wait
        while True:
            limit = self._limiter.limit(f"handler:{self._handler}", self._limit)  # a change applies at once
            bucket = f"handler|{self._handler}"
            grant = self._limiter.take_many([(bucket, 1, limit.rate, limit.capacity)])[0]
            self._publish(bucket, limit.rate)
            if grant.granted:
                return 0.0
            if time.monotonic() + grant.wait > deadline:
                return grant.wait
            on_wait(grant.wait)
            sleep(grant.wait)

    def _publish(self, bucket: str, rate: float) -> None:
        now = time.monotonic()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_EFFECTIVE_EVERY
            self._limiter.publish_effective({bucket: rate})


_throttles: dict[tuple[str, Limit], Throttle] = {}


def bounded(wait: float, room: float) -> float:
    """A wait as a countdown: never past what the broker's visibility timeout leaves, never infinite."""
    return min(wait, room) if math.isfinite(wait) else room
