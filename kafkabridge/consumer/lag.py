"""Consumer lag: how many messages each assigned partition is behind the end of its log.

Measured from the broker's high watermark, asked for each time (a paused partition fetches nothing,
so the watermark librdkafka caches from fetches would go stale), minus the bridge's position, plus
what the bridge holds unpublished.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from .offsets import PartitionKey

WATERMARK_TIMEOUT = 1.0
"""Seconds to wait for one partition's high watermark."""


class LagProbe:
    """Asks the broker for the end of each partition; a partition it cannot tell about is left out."""

    def __init__(self, *, report: Callable[..., None]) -> None:
        self._report = report

    def measure(
        self,
        consumer: Consumer,
        partitions: Collection[PartitionKey],
        positions: Mapping[PartitionKey, int],
        held: Mapping[PartitionKey, int],
    ) -> dict[PartitionKey, int]:
        """Lag per partition: high watermark − position (the offset after the last message consumed) + held."""
        lags = {}
        for topic, partition in sorted(partitions):
            high = self._high(consumer, topic, partition)
            if high is not None:
                position = positions.get((topic, partition), high)
                lags[(topic, partition)] = max(0, high - position) + held.get((topic, partition), 0)
        return lags

    def _high(self, consumer: Any, topic: str, partition: int) -> int | None:
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=WATERMARK_TIMEOUT)
        except KafkaException as error:
            self._report(f"lag:{topic}", "could not read the end of %s[%d] (%s); its lag is unknown", topic, partition, error.args[0])
            return None
        return int(high)
