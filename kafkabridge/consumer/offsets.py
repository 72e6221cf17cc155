"""Which offset of each partition may be committed now: the one place that decides it.

The bridge tells the tracker about every message it takes from Kafka (``track``) and about every
message whose hand-off is final (``mark_done``). Today "final" means the Celery broker confirmed the
publish; a later mode can call ``mark_done`` when the handler finishes instead, without touching
the consumer loop. Completion may arrive out of order; the committable offset only moves past a
contiguous run of finished messages, so a commit never skips an unfinished one.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

PartitionKey = tuple[str, int]
"""(topic, partition): a plain key, not confluent-kafka's ``TopicPartition`` object."""


class _PartitionProgress:
    __slots__ = ("pending", "done", "next_offset", "committed")

    def __init__(self) -> None:
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.next_offset: int | None = None
        self.committed: int | None = None


class OffsetTracker:
    """Per partition: offsets in flight, offsets finished, and the next offset safe to commit."""

    def __init__(self) -> None:
        self._partitions: dict[PartitionKey, _PartitionProgress] = {}

    def track(self, partition: PartitionKey, offset: int) -> None:
        """``offset`` was consumed and is now in flight (offsets arrive in increasing order)."""
        self._partitions.setdefault(partition, _PartitionProgress()).pending.append(offset)

    def mark_done(self, partition: PartitionKey, offset: int) -> None:
        """The message at ``offset`` reached its final hand-off."""
        progress = self._partitions.get(partition)
        if progress is None:
            return  # revoked meanwhile: its new owner re-reads it from the last commit
        progress.done.add(offset)
        while progress.pending and progress.pending[0] in progress.done:
            finished = progress.pending.popleft()
            progress.done.discard(finished)
            progress.next_offset = finished + 1

    def in_flight(self, partition: PartitionKey) -> int:
        progress = self._partitions.get(partition)
        return len(progress.pending) if progress else 0

    def committable(self) -> dict[PartitionKey, int]:
        """Next offset to commit for every partition that moved since the last :meth:`committed` call."""
        return {
            partition: progress.next_offset
            for partition, progress in self._partitions.items()
            if progress.next_offset is not None and progress.next_offset != progress.committed
        }

    def committed(self, offsets: dict[PartitionKey, int]) -> None:
        """These offsets reached Kafka; :meth:`committable` stops offering them."""
        for partition, offset in offsets.items():
            if partition in self._partitions:
                self._partitions[partition].committed = offset

    def forget(self, partitions: Iterable[PartitionKey]) -> None:
        """The partitions were revoked or lost; whatever was in flight is the next owner's to read."""
        for partition in partitions:
            self._partitions.pop(partition, None)
