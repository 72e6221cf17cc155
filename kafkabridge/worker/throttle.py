"""A handler's rate limit across all workers: a token before each run, or a wait that is not an attempt.

The option is ``@kafka_handler(..., throttle=Limit(rate=50, burst=10))`` (Celery's own ``rate_limit``
means something else: a limit per worker process). Without a token now, the task reserves the next
free one (or, when that is further away than the broker's visibility timeout allows, waits until
it can) and schedules itself again with that countdown; the wait uses none of the retry budget, is
logged at debug level only, and is reported through ``Hooks.on_rate_limited``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from .. import runtime
from ..ratelimit.bucket import Grant
from ..ratelimit.limiter import RateLimiter, limiter_for
from ..ratelimit.limits import Limit

logger = logging.getLogger(__name__)

PUBLISH_EFFECTIVE_EVERY = 5.0


class Throttle:
    """Takes one token per handler run from the handler's shared bucket."""

    def __init__(self, limiter: RateLimiter, handler: str, limit: Limit) -> None:
        self._limiter = limiter
        self._handler = handler
        self._limit = limit
        self._next_publish = 0.0

    @classmethod
    def of(cls, task: Any, limit: Limit) -> Throttle:
        settings = runtime.current().settings
        limiter = limiter_for(
            "worker", url=settings.rate_limit_redis_url, broker_url=str(task.app.conf.broker_url or ""),
            hooks=runtime.current().hooks,
        )
        return cls(limiter, task.name, limit)

    def take(self, horizon: float) -> Grant:
        """A token now (``wait`` 0), a token reserved for ``wait`` seconds from now (at most ``horizon``),
        or none yet (``granted`` 0; ask again in ``wait`` seconds; inf: the rate is 0).

        Reserving spaces the waiting tasks one token interval apart, so they do not all come back at
        once to find one token between them.
        """
        limit = self._limiter.limit(f"handler:{self._handler}", self._limit)
        bucket = f"handler|{self._handler}"
        grant = self._limiter.take_many([(bucket, 1, limit.rate, limit.capacity)], horizon=horizon)[0]
        self._publish(bucket, limit.rate)
        return grant

    def _publish(self, bucket: str, rate: float) -> None:
        now = time.monotonic()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_EFFECTIVE_EVERY
            self._limiter.publish_effective({bucket: rate})


def bounded(wait: float, room: float) -> float:
    """A wait as a countdown: never past what the broker's visibility timeout leaves, never infinite."""
    return min(wait, room) if math.isfinite(wait) else room
