"""What a limit is, and how the lag-adaptive rate follows a partition's consumer lag.

A :class:`Limit` has a base ``rate`` (tokens per second) and a ``burst``. With a ``max_rate``, the
effective rate rises from ``rate`` toward ``max_rate`` as the lag grows past ``lag_threshold``::

    excess    = max(0, L - lag_threshold)
    effective = rate + (max_rate - rate) * excess / (excess + lag_scale)

where ``L`` is the lag smoothed by :class:`LagSmoother` (an exponential moving average with a time
constant of ``tau`` seconds). The curve is continuous and monotonic, equals ``rate`` up to the
threshold, is half way to ``max_rate`` at ``lag_threshold + lag_scale``, and never reaches
``max_rate``; the smoothing keeps a burst of lag from making the rate jump (no flapping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..errors import ConfigurationError

DEFAULT_LAG_SCALE = 1000.0
"""Messages of lag past the threshold at which the rate is half way from ``rate`` to ``max_rate``."""
DEFAULT_LAG_TAU = 10.0
"""Seconds: the time constant of the lag's moving average."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """``rate`` tokens per second, ``burst`` at most at once (default: one second's worth, at least 1)."""

    rate: float
    burst: float | None = None
    max_rate: float | None = None
    """With it, the rate follows the consumer lag (bridge intake only)."""
    lag_threshold: float = 0.0
    lag_scale: float = DEFAULT_LAG_SCALE

    def __post_init__(self) -> None:
        if not (self.rate >= 0 and math.isfinite(self.rate)):
            raise ConfigurationError(f"a rate limit's rate must be a finite number >= 0, got {self.rate!r}")
        if self.burst is not None and self.burst < 1:
            raise ConfigurationError(f"a rate limit's burst must be at least 1 token, got {self.burst!r}")
        if self.max_rate is not None and self.max_rate < self.rate:
            raise ConfigurationError(f"max_rate ({self.max_rate}) must not be below rate ({self.rate})")
        if self.lag_scale <= 0 or self.lag_threshold < 0:
            raise ConfigurationError("lag_scale must be > 0 and lag_threshold >= 0")

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.rate)

    def effective_rate(self, lag: float) -> float:
        """The rate at a (smoothed) consumer lag of ``lag`` messages."""
        if self.max_rate is None:
            return self.rate
        excess = max(0.0, lag - self.lag_threshold)
        return self.rate + (self.max_rate - self.rate) * excess / (excess + self.lag_scale)

    def merged(self, override: Mapping[str, Any]) -> Limit:
        """This limit with the fields an operator changed at run time (unknown fields ignored)."""
        known = {"rate", "burst", "max_rate", "lag_threshold", "lag_scale"}
        return replace(self, **{k: v for k, v in override.items() if k in known})

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> Limit:
        """From settings (``{"RATE": 100, "BURST": 200, "MAX_RATE": 500, ...}``, any case)."""
        values = {key.lower(): value for key, value in options.items()}
        unknown = set(values) - {"rate", "burst", "max_rate", "lag_threshold", "lag_scale"}
        if unknown:
            raise ConfigurationError(f"unknown rate limit option(s) {', '.join(sorted(unknown))}; known: RATE, BURST, MAX_RATE, LAG_THRESHOLD, LAG_SCALE")
        if "rate" not in values:
            raise ConfigurationError("a rate limit needs RATE (tokens per second)")
        return cls(**{k: float(v) if v is not None else None for k, v in values.items()})


class LagSmoother:
    """An exponential moving average of one partition's lag, by elapsed time (not by sample count)."""

    def __init__(self, tau: float = DEFAULT_LAG_TAU) -> None:
        self._tau = tau
        self._value: float | None = None
        self._at = 0.0

    @property
    def value(self) -> float:
        return self._value or 0.0

    def observe(self, lag: float, now: float) -> float:
        if self._value is None:
            self._value = float(lag)
        else:
            weight = 1.0 - math.exp(-max(0.0, now - self._at) / self._tau)
            self._value += weight * (lag - self._value)
        self._at = now
        return self._value
