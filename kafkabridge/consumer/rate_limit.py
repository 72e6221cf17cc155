"""Rate limiting at the bridge's intake: a token bucket per Kafka partition, shared by every bridge.

A hot partition cannot flood the workers: before a partition's held messages are published, its
bucket (keyed by group, topic and partition) grants tokens for the whole batch in one round trip
(all partitions together). What is not granted stays held, in order, and the partition is paused
until its next token is due; the bridge keeps calling ``consume()``, so the group never rebalances
because of the limiter. A topic with a ``max_rate`` follows its partitions' lag (see
:mod:`kafkabridge.ratelimit.limits`).
"""

from __future__ import annotations

import logging
from typing import Collection, Mapping

from ..ratelimit.limiter import RateLimiter
from ..ratelimit.limits import LagSmoother, Limit
from .flow_control import Cause, Counts
from .offsets import PartitionKey

logger = logging.getLogger(__name__)

PUBLISH_EFFECTIVE_EVERY = 5.0
"""Seconds between publications of the effective rates (for the admin) and log lines about them."""
MIN_RECHECK = 0.01
"""Seconds: the soonest a held partition is looked at again, so that a cause before this one holding
the same partition (a broker outage) cannot make the loop spin."""


class PartitionRateLimit(Cause):
    """Trims each partition's batch to the tokens its bucket grants and holds it until the next token."""

    name = "rate limit"

    def __init__(self, limiter: RateLimiter, group: str, limits: Mapping[str, Limit]) -> None:
        self._limiter = limiter
        self._group = group
        self._limits = dict(limits)
        self._blocked_until: dict[PartitionKey, float] = {}
        self._lags: dict[PartitionKey, LagSmoother] = {}
        self._effective: dict[PartitionKey, float] = {}
        self._next_publish = 0.0

    def admit(self, offered: Counts, now: float) -> Counts:
        allowed: dict[PartitionKey, int] = {}
        asking: list[PartitionKey] = []
        for partition, count in offered.items():
            if partition[0] not in self._limits:
                continue
            if now < self._blocked_until.get(partition, 0.0):
                allowed[partition] = 0
            elif count > 0:
                asking.append(partition)
        requests = [(self.bucket(p), offered[p], *self._rate_and_burst(p)) for p in asking]
        for partition, grant in zip(asking, self._limiter.take_many(requests)):
            allowed[partition] = grant.granted
            if grant.granted < offered[partition]:
                self._blocked_until[partition] = now + min(grant.wait, 60.0)
            else:
                self._blocked_until.pop(partition, None)
        self._publish_effective(now)
        return allowed

    def holds(self, pending: Counts, now: float) -> Mapping[PartitionKey, float | None]:
        held = {p: max(until, now + MIN_RECHECK) for p, until in self._blocked_until.items() if pending.get(p, 0) > 0}
        for partition in set(self._blocked_until) - set(held):
            del self._blocked_until[partition]  # nothing waits: fetch again (no hold without a backlog)
        return held

    def lag(self, lags: Mapping[PartitionKey, int], now: float) -> None:
        for partition, lag in lags.items():
            self._lags.setdefault(partition, LagSmoother()).observe(lag, now)
            if partition[0] in self._limits:
                self._rate_and_burst(partition)  # the effective rate follows the lag with no traffic too
        self._publish_effective(now)

    def forget(self, partitions: Collection[PartitionKey]) -> None:
        for partition in partitions:
            self._blocked_until.pop(partition, None)
            self._lags.pop(partition, None)
            self._effective.pop(partition, None)

    def bucket(self, partition: PartitionKey) -> str:
        return f"partition|{self._group}|{partition[0]}|{partition[1]}"

    def effective_rates(self) -> dict[PartitionKey, float]:
        return dict(self._effective)

    def _rate_and_burst(self, partition: PartitionKey) -> tuple[float, float]:
        limit = self._limiter.limit(f"topic:{partition[0]}", self._limits[partition[0]])
        lag = self._lags[partition].value if partition in self._lags else 0.0
        rate = self._effective[partition] = limit.effective_rate(lag)
        return rate, limit.capacity

    def _publish_effective(self, now: float) -> None:
        if now < self._next_publish or not self._effective:
            return
        self._next_publish = now + PUBLISH_EFFECTIVE_EVERY
        self._limiter.publish_effective({self.bucket(p): rate for p, rate in self._effective.items()})
        held = sorted(p for p, until in self._blocked_until.items() if until > now)
        if held:
            logger.info("rate limit holds %s; effective rates %s", ", ".join(f"{t}[{p}]" for t, p in held),
                        ", ".join(f"{t}[{p}] {r:.1f}/s" for (t, p), r in sorted(self._effective.items())))
