"""Per partition and per batch: how many held messages may go to Celery now, and which partitions stay paused.

A *cause* is one reason to hold partitions back, in one small class (the idea of karafka's filters:
a filter may trim a partition's batch and pause the partition, optionally until a time). The loop
asks :class:`FlowControl` two questions every turn and never learns why the answer is what it is:

- :meth:`FlowControl.admit`: of the messages the bridge holds per partition, how many may be
  published now? Each cause sees what the causes before it let through, so a later, costlier cause
  (a Redis token bucket) is only asked about messages that could really go.
- :meth:`FlowControl.holds`: which partitions stay paused in Kafka, held by which causes, until
  when? A partition resumes only when no cause holds it.

Causes learn what happened through :meth:`Cause.published`, :meth:`Cause.refused` and
:meth:`Cause.forget`. A cause that trims a partition should also hold it, or the bridge keeps
fetching for a partition whose messages cannot go: a token bucket grants part of a batch and holds
the partition until its next token; an in-flight bound holds a partition while it is at the bound.
Adding a cause is adding one such class; the broker outage below is the model.
"""

from __future__ import annotations

import logging
from typing import Callable, ClassVar, Collection, Iterable, Mapping, Sequence

from ..backoff import broker_outage_delay
from ..errors import PublishError
from ..message import Message
from .offsets import PartitionKey

logger = logging.getLogger(__name__)

Counts = Mapping[PartitionKey, int]
"""Messages per partition: those the bridge holds, or those a cause lets through."""
Holds = dict[PartitionKey, dict[str, float | None]]
"""Per held partition: the name of every cause holding it, and when that cause looks again (None: on an event)."""


class Cause:
    """One reason to hold partitions back. Every method does nothing by default: subclass what you need.

    ``now`` is the bridge's monotonic clock, in seconds; times a cause returns are on that clock.
    """

    name: ClassVar[str] = "cause"
    """Shown in logs next to the partitions this cause holds."""

    def admit(self, offered: Counts, now: float) -> Counts:
        """How many of the ``offered`` messages of each partition may go now; a partition left out may send all."""
        return {}

    def holds(self, pending: Counts, now: float) -> Mapping[PartitionKey, float | None]:
        """Which of these assigned partitions (with the messages the bridge still holds for each) stay paused.

        The value is when this cause wants to be asked again (it may hold on then), or None when only
        an event (a publish, a completion) can release the partition.
        """
        return {}

    def published(self, messages: Sequence[Message], now: float) -> None:
        """A publish succeeded: the Celery broker confirmed every one of these messages."""

    def refused(self, messages: Sequence[Message], error: PublishError, now: float) -> None:
        """A publish failed; the bridge still holds these messages (those the broker did not confirm)."""

    def forget(self, partitions: Collection[PartitionKey]) -> None:
        """The partitions were revoked or lost: drop whatever this cause kept about them."""

    def lag(self, lags: Mapping[PartitionKey, int], now: float) -> None:
        """The consumer lag of these partitions (messages behind the log's end), measured every few seconds."""


class FlowControl:
    """The one place that decides what may go now and what stays paused, by asking every cause in order."""

    def __init__(self, causes: Iterable[Cause]) -> None:
        self.causes: tuple[Cause, ...] = tuple(causes)

    def admit(self, pending: Counts, now: float) -> dict[PartitionKey, int]:
        """Messages per partition that may be published now: what every cause, in turn, lets through."""
        allowed = {partition: count for partition, count in pending.items() if count > 0}
        for cause in self.causes:
            for partition, count in cause.admit(dict(allowed), now).items():
                if partition in allowed:
                    allowed[partition] = max(0, min(allowed[partition], count))
            allowed = {partition: count for partition, count in allowed.items() if count > 0}
        return allowed

    def holds(self, pending: Counts, now: float) -> Holds:
        """Every assigned partition (``pending`` lists them all) that some cause holds, with who and until when."""
        held: Holds = {}
        for cause in self.causes:
            for partition, until in cause.holds(pending, now).items():
                held.setdefault(partition, {})[cause.name] = until
        return held

    def published(self, messages: Sequence[Message], now: float) -> None:
        for cause in self.causes:
            cause.published(messages, now)

    def refused(self, messages: Sequence[Message], error: PublishError, now: float) -> None:
        for cause in self.causes:
            cause.refused(messages, error, now)

    def forget(self, partitions: Collection[PartitionKey]) -> None:
        for cause in self.causes:
            cause.forget(partitions)

    def lag(self, lags: Mapping[PartitionKey, int], now: float) -> None:
        for cause in self.causes:
            cause.lag(lags, now)


def next_look(holds: Holds, now: float) -> float | None:
    """The earliest future time at which a cause wants to look again at what it holds."""
    times = [until for causes in holds.values() for until in causes.values() if until is not None and until > now]
    return min(times, default=None)


class BrokerOutage(Cause):
    """Holds every partition while the Celery broker refuses publishes; clears when a publish succeeds.

    After a refusal nothing may go until the backoff (``delay(failures)``) has passed; then what the
    bridge holds is published again as the probe, while the partitions stay paused (pausing and
    resuming around each probe would throw librdkafka's prefetched messages away for nothing).
    A probe needs something to send: if the bridge holds nothing when the backoff is over (the
    partitions that held the refused messages were revoked), the hold is lifted so that partitions
    fetch again, and the next publish is the probe.
    """

    name = "broker outage"

    def __init__(self, *, delay: Callable[[int], float] = broker_outage_delay) -> None:
        self._delay = delay
        self._failures = 0
        self._retry_at = 0.0
        self._lifted = False

    def admit(self, offered: Counts, now: float) -> Counts:
        if self._failures and now < self._retry_at:
            return dict.fromkeys(offered, 0)
        return {}

    def holds(self, pending: Counts, now: float) -> Mapping[PartitionKey, float | None]:
        if not self._failures or self._lifted:
            return {}
        if now >= self._retry_at and not any(pending.values()):
            self._lifted = True  # nothing to probe with: let the partitions fetch something
            return {}
        return dict.fromkeys(pending, self._retry_at if now < self._retry_at else None)

    def refused(self, messages: Sequence[Message], error: PublishError, now: float) -> None:
        self._failures += 1
        self._lifted = False
        delay = self._delay(self._failures)
        self._retry_at = now + delay
        logger.error(
            "Celery broker refused a publish (%r); holding %d message(s), partitions paused, retrying in %.1fs",
            error.cause, len(messages), delay,
        )

    def published(self, messages: Sequence[Message], now: float) -> None:
        if self._failures:
            logger.warning("Celery broker accepts publishes again after %d failure(s); resuming", self._failures)
            self._failures = 0
            self._lifted = False
