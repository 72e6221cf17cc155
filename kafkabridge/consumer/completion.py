"""Completion tracking, the bridge's side: which published messages have no final outcome yet.

In the default mode (``COMMIT_AFTER = "completion"``) a published message stays *in flight* until a
worker records its final outcome (handled, or stored as a dead letter) in the completion ledger;
only then may the offset tracker commit past it. The bridge keeps every in-flight message in
memory (bounded per partition by :class:`InFlightBound`), so that a message nobody holds any more is
dispatched again from here, without re-reading Kafka:

- its lease ran out: the worker running it, or holding its countdown retry, died or froze;
- it never started within its handler's completion timeout: lost with the broker, or stuck in
  the reservation of a worker that died;
- Redis lost the ledger (a restart without its data): every unfinished message of the partition.

Each dispatch carries a fresh token and claims the message in the ledger first, so an older copy
that turns up later stands down instead of running the handler again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from uuid import uuid4

from redis.exceptions import RedisError

from ..completion import CompletionLedger, PartitionProgress, Progress
from ..message import Message
from .flow_control import Cause, Counts
from .offsets import PartitionKey
from .pending import partition_of

logger = logging.getLogger(__name__)


def new_token() -> str:
    return uuid4().hex[:12]


@dataclass(slots=True)
class _InFlight:
    message: Message
    deadline: float
    """Bridge-clock time after which, without a lease, the message counts as lost."""
    dispatches: int = 1


class Lost(NamedTuple):
    message: Message
    reason: str


@dataclass(frozen=True, slots=True)
class Check:
    """What one look at the ledger found: messages now final, and messages nobody holds any more."""

    done: list[Message]
    lost: list[Lost]


class CompletionTracking:
    """In-flight messages per partition, checked against the completion ledger."""

    def __init__(self, ledger: CompletionLedger, *, timeouts: Mapping[str, float]) -> None:
        self.ledger = ledger
        self._timeouts = dict(timeouts)
        """Seconds per topic a message may go without an outcome or a lease."""
        self._partitions: dict[PartitionKey, dict[int, _InFlight]] = {}
        self._floors: dict[PartitionKey, int] = {}
        """Floors written to the ledger, to notice when Redis lost them (and to write them again)."""

    def in_flight(self, partition: PartitionKey) -> int:
        return len(self._partitions.get(partition, ()))

    def claim(self, messages: Sequence[Message], token: str) -> None:
        """Make ``token`` the owner of these messages before they are published (raises RedisError).

        A fresh batch is claimed as one range of offsets per partition; messages dispatched again (they
        are in flight here already) are claimed on their own, so that their stale leases are dropped.
        """
        fresh: dict[PartitionKey, list[int]] = {}
        again: dict[PartitionKey, list[int]] = {}
        for message in messages:
            partition = partition_of(message)
            held = message.offset in self._partitions.get(partition, ())
            (again if held else fresh).setdefault(partition, []).append(message.offset)
        if fresh:
            self.ledger.claim(fresh, token)
        if again:
            self.ledger.claim(again, token, again=True)

    def dispatched(self, messages: Iterable[Message], now: float) -> None:
        """The broker confirmed these messages: in flight from now on."""
        for message in messages:
            held = self._partitions.setdefault(partition_of(message), {})
            previous = held.get(message.offset)
            held[message.offset] = _InFlight(
                message, now + self._timeouts.get(message.topic, 0.0), 1 + (previous.dispatches if previous else 0)
            )

    def check(self, now: float, only: Collection[PartitionKey] | None = None) -> Check:
        """Ask the ledger about every in-flight message (of ``only`` these partitions); raises RedisError."""
        wanted = {p: sorted(held) for p, held in self._partitions.items() if held and (only is None or p in only)}
        done: list[Message] = []
        lost: list[Lost] = []
        for partition, progress in self.ledger.progress(wanted).items():
            self._settle(partition, progress, now, done, lost)
        return Check(done, lost)

    def _settle(self, partition: PartitionKey, progress: PartitionProgress, now: float, done: list[Message], lost: list[Lost]) -> None:
        held = self._partitions[partition]
        data_lost = partition in self._floors and not progress.floor_known
        for offset in sorted(held):
            entry = held[offset]
            if offset in progress.done:
                done.append(held.pop(offset).message)
            elif data_lost:
                lost.append(Lost(entry.message, "the ledger lost its data (a Redis restart)"))
            elif offset in progress.leases:
                if progress.leases[offset] < 0:
                    lost.append(Lost(entry.message, "its lease ran out (the worker died or froze)"))
            elif now >= entry.deadline:
                lost.append(Lost(entry.message, "it did not start within its completion timeout"))
        if data_lost:
            self._rewrite_floor(partition)

    def _rewrite_floor(self, partition: PartitionKey) -> None:
        logger.warning("the completion ledger lost %s[%d]'s state (Redis restarted without its data); writing it again", *partition)
        self.advance({partition: self._floors[partition]})

    def advance(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Kafka has these committed offsets (or the partitions were assigned at them): tell the ledger."""
        try:
            self.ledger.advance(offsets)
        except RedisError as error:
            logger.warning("could not record committed offsets in the completion ledger (%r); tried again at the next commit", error)
            return
        self._floors.update(offsets)

    def forget(self, partitions: Collection[PartitionKey]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)
            self._floors.pop(partition, None)

    def progress(self, committed: Mapping[PartitionKey, int]) -> dict[PartitionKey, Progress]:
        """Committed offset, lowest unfinished offset and messages in flight, per partition with any of them."""
        partitions = set(committed) | {p for p, held in self._partitions.items() if held}
        return {
            p: Progress(committed.get(p), min(self._partitions.get(p) or (), default=None), self.in_flight(p))
            for p in partitions
        }

    def __len__(self) -> int:
        return sum(len(held) for held in self._partitions.values())


class InFlightBound(Cause):
    """Holds a partition while ``bound`` of its messages are in flight: bounded memory, per partition.

    At the bound the partition is paused (the bridge goes on consuming the others) and resumes as
    outcomes arrive. It trims a batch to the room left, so a partition never exceeds the bound.
    """

    name = "in-flight bound"

    def __init__(self, tracking: CompletionTracking, bound: int) -> None:
        self._tracking = tracking
        self._bound = bound

    def admit(self, offered: Counts, now: float) -> Counts:
        return {p: max(0, self._bound - self._tracking.in_flight(p)) for p in offered}

    def holds(self, pending: Counts, now: float) -> Mapping[PartitionKey, float | None]:
        return {p: None for p in pending if self._tracking.in_flight(p) >= self._bound}
