"""The messages the bridge took from Kafka and the Celery broker has not confirmed yet, per partition, in order.

Why keep them rather than seek back: librdkafka throws away what it prefetched for a partition when
the partition is paused, and on resume fetches again from the position after the last message it
returned to the application. So whatever ``consume()`` returned is the bridge's to keep: kept here,
it is published when its partition may go again, exactly once and in offset order, with nothing to
fetch twice. (Seeking back to the first unpublished offset would work too, but it refetches data
already in memory and has to be undone in the offset tracker.) The memory is bounded: a held
partition is paused, so nothing more is fetched for it until its causes let it go.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Collection, Iterable, Mapping, Sequence

from ..message import Message
from .offsets import PartitionKey


def partition_of(message: Message) -> PartitionKey:
    return message.topic, message.partition


class PendingMessages:
    """Per partition, the messages not yet confirmed by the broker, oldest first."""

    def __init__(self) -> None:
        self._partitions: dict[PartitionKey, deque[Message]] = {}

    def add(self, message: Message) -> None:
        self._partitions.setdefault(partition_of(message), deque()).append(message)

    def counts(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, int]:
        """How many messages each of ``partitions`` holds (0 for those that hold none)."""
        return {partition: len(self._partitions.get(partition, ())) for partition in partitions}

    def first(self, allowed: Mapping[PartitionKey, int]) -> list[Message]:
        """The oldest ``allowed[p]`` messages of each partition ``p``; each partition's stay in order."""
        batch: list[Message] = []
        for partition, count in allowed.items():
            batch.extend(islice(self._partitions.get(partition, ()), count))
        return batch

    def confirm(self, messages: Sequence[Message]) -> None:
        """Drop confirmed messages; each is the oldest of its partition when its turn comes (see :meth:`first`)."""
        for message in messages:
            held = self._partitions[partition_of(message)]
            assert held[0] is message, "confirmed out of order"
            held.popleft()
            if not held:
                del self._partitions[partition_of(message)]

    def drop(self, partitions: Collection[PartitionKey]) -> int:
        """Forget what ``partitions`` hold (revoked or lost); returns how many messages that was."""
        return sum(len(self._partitions.pop(partition, ())) for partition in partitions)

    def partitions(self) -> set[PartitionKey]:
        return set(self._partitions)

    def __len__(self) -> int:
        return sum(len(held) for held in self._partitions.values())
