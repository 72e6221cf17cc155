"""When a failed handler runs again, and when it stops trying: pure maths plus classification.

Backoff is :func:`kafkabridge.backoff.exponential_backoff` (exponential, proportional jitter, capped
after jitter) with the policy's parameters.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass

from .backoff import RandomSource, exponential_backoff
from .errors import ConfigurationError, GiveUp

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BASE_DELAY = 1.0
"""Seconds before the first retry."""
DEFAULT_MAX_DELAY = 300.0
"""Seconds; no retry waits longer, jitter included."""
DEFAULT_MULTIPLIER = 2.0
DEFAULT_JITTER = 0.2
"""Fraction of the nominal delay by which a retry may come early or late."""



@dataclass(frozen=True, slots=True)
class RetryLater:
    """Run the handler again after ``countdown`` seconds."""

    countdown: float


@dataclass(frozen=True, slots=True)
class DeadLetterNow:
    """Stop trying; keep the message as a dead letter for this ``reason``."""

    reason: str


Decision = RetryLater | DeadLetterNow


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How many times a handler is tried for one message, and how long to wait between tries."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: float = DEFAULT_JITTER
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    """Only these exceptions are retried; anything else is dead-lettered at once."""
    give_up_on: tuple[type[BaseException], ...] = ()
    """These exceptions are dead-lettered at once, even when ``retry_on`` matches them."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ConfigurationError(
                f"RetryPolicy needs 0 <= base_delay <= max_delay, got base_delay={self.base_delay}, "
                f"max_delay={self.max_delay}"
            )
        if self.multiplier < 1:
            raise ConfigurationError(f"RetryPolicy.multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"RetryPolicy.jitter is a fraction between 0 and 1, got {self.jitter}")

    @property
    def longest_delay(self) -> float:
        """The longest any retry of this policy can wait, in seconds."""
        return self.max_delay if self.max_attempts > 1 else 0.0

    def delay(self, attempt: int, random: RandomSource = _random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one."""
        return exponential_backoff(
            attempt, base=self.base_delay, maximum=self.max_delay, multiplier=self.multiplier, jitter=self.jitter,
            random=random,
        )

    def decide(self, error: BaseException, attempt: int, random: RandomSource = _random.random) -> Decision:
        """What to do after ``error`` ended attempt number ``attempt``."""
        if isinstance(error, GiveUp):
            return DeadLetterNow(f"gave up: {error.reason}")
        if isinstance(error, self.give_up_on):
            return DeadLetterNow(f"gave up on {type(error).__name__} (give_up_on)")
        if not isinstance(error, self.retry_on):
            return DeadLetterNow(f"{type(error).__name__} is not retried (retry_on)")
        if attempt >= self.max_attempts:
            return DeadLetterNow(f"retries exhausted after {attempt} attempt(s)")
        return RetryLater(self.delay(attempt, random))
