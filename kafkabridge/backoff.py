"""Exponential backoff with proportional jitter: one pure function for handler retries and outages alike.

::

    delay(n) = min(maximum, base * multiplier ** (n - 1) * (1 + jitter * u)),  u uniform in [-1, 1)

Proportional jitter (the seed library's ``withJitter(0.2)``) keeps each wait near its nominal delay
while spreading a burst of failures over ±20% so they do not come back as one thundering herd.
"Full jitter" (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/) spreads
load even better but can retry immediately; ``jitter=1.0`` comes close to it. The cap is applied
after jitter, so no wait ever exceeds ``maximum``.
"""

from __future__ import annotations

import random as _random
from typing import Callable

RandomSource = Callable[[], float]
"""Returns a float in [0, 1), like :func:`random.random`; injectable so tests can pin it."""


def exponential_backoff(
    attempt: int,
    *,
    base: float,
    maximum: float,
    multiplier: float = 2.0,
    jitter: float = 0.2,
    random: RandomSource = _random.random,
) -> float:
    """Seconds to wait after failed try number ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    try:
        nominal = min(maximum, base * multiplier ** (attempt - 1))
    except OverflowError:  # attempt numbers in the thousands: long past the cap anyway
        nominal = maximum
    spread = jitter * (2.0 * random() - 1.0)
    return max(0.0, min(maximum, nominal * (1.0 + spread)))


def broker_outage_delay(failures: int) -> float:
    """Seconds before the bridge tries the Celery broker again after ``failures`` refused publishes."""
    return exponential_backoff(failures, base=0.2, maximum=10.0)


STORE_OUTAGE_MAX_DELAY = 60.0
"""Seconds; the longest wait between tries to save a dead letter (or mark one resolved) while the store is down."""


def store_outage_delay(failures: int, *, maximum: float = STORE_OUTAGE_MAX_DELAY) -> float:
    """Seconds before a worker tries the dead-letter store again after ``failures`` failed tries.

    ``maximum`` lowers the cap (never raises it): the wait is a countdown in the broker, which must
    stay below what its visibility timeout leaves (:func:`kafkabridge.checks.countdown_room`).
    """
    return exponential_backoff(failures, base=min(1.0, maximum), maximum=min(maximum, STORE_OUTAGE_MAX_DELAY))
