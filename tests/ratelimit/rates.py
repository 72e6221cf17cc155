"""Rates measured from handler start times (wall-clock seconds), as the rate-limit tests and benchmarks count them."""

from __future__ import annotations

import bisect
from typing import Sequence


def count_between(times: Sequence[float], start: float, end: float) -> int:
    """Starts in [start, end); ``times`` sorted."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def windows(times: Sequence[float], start: float, seconds: float, count: int) -> list[int]:
    """Starts in each of ``count`` consecutive windows of ``seconds`` from ``start``."""
    return [count_between(times, start + i * seconds, start + (i + 1) * seconds) for i in range(count)]


def per_second(times: Sequence[float], start: float, end: float) -> list[int]:
    """Starts in each whole second from ``start`` until ``end``."""
    return windows(times, start, 1.0, int(end - start))


def peak(times: Sequence[float], *, seconds: float = 1.0) -> int:
    """The most starts in any window of ``seconds`` (sliding: it may begin at any start)."""
    return max((count_between(times, t, t + seconds) for t in times), default=0)
