"""The token bucket as a pure function: the reference for the Lua script and the local fallback.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens per second. Taking ``n`` tokens grants
what is there (a partial grant, whole tokens only) and says how long until the next whole token::

    tokens(now) = min(burst, tokens(then) + rate * max(0, now - then))   # a clock going back adds nothing
    granted     = min(n, floor(tokens(now)))
    wait        = 0 if granted == n else (1 - (tokens(now) - granted)) / rate   # inf: rate 0 or burst < 1

With a ``horizon`` (seconds), a request that cannot be granted now may *reserve* its tokens: the
bucket goes into debt (negative tokens) and the caller is granted everything, to be used after
``wait`` seconds, provided that is no more than ``horizon`` away. Waiting callers then come back
one token interval apart instead of all at once (no thundering herd); the debt is bounded by
``horizon * rate``.

``bucket.lua`` computes the same, on Redis' clock, in one atomic step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float
    """Seconds, on whatever clock the caller uses (Redis ``TIME`` for the shared bucket)."""


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    wait: float
    """Seconds until the next whole token (0 when everything asked for was granted; inf at rate 0)."""


def take(
    state: BucketState | None, *, now: float, rate: float, burst: float, requested: int, horizon: float = 0.0
) -> tuple[Grant, BucketState]:
    """Take up to ``requested`` tokens at ``now`` (a missing state is a full bucket); with a ``horizon``,
    reserve them if they are due within it (``Grant.wait`` says when they may be used)."""
    if rate < 0 or burst < 0 or requested < 0:
        raise ValueError(f"rate, burst and requested must not be negative (got {rate}, {burst}, {requested})")
    tokens = burst if state is None else min(burst, state.tokens + rate * max(0.0, now - state.updated_at))
    updated_at = now if state is None else max(now, state.updated_at)
    if horizon > 0 and rate > 0 and burst >= 1 and tokens < requested:
        due = (requested - tokens) / rate
        if due <= horizon:  # reserve: in debt until the tokens are due
            return Grant(requested, due), BucketState(tokens - requested, updated_at)
        return Grant(0, due - horizon), BucketState(tokens, updated_at)
    granted = max(0, min(requested, math.floor(tokens + 1e-9)))
    left = tokens - granted
    if granted == requested:
        wait = 0.0
    elif rate == 0 or burst < 1:
        wait = math.inf  # it never refills, or never holds a whole token
    else:
        wait = max(0.0, (1.0 - left) / rate)
    return Grant(granted, wait), BucketState(left, updated_at)
