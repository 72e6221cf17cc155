"""Consumer lag: how many messages each assigned partition is behind the end of its log.

Measured from the high watermark minus the bridge's position, plus what the bridge holds unpublished.
For a partition that is fetching, librdkafka's cached watermark (updated by every fetch response) is
fresh and free; only a paused partition, which fetches nothing, needs a request to the broker (a
round trip that blocks the loop, so it is not made for the others).
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
        paused: Collection[PartitionKey] = (),
    ) -> dict[PartitionKey, int]:
        """Lag per partition: high watermark − position (the offset after the last message consumed) + held."""
        lags = {}
        for topic, partition in sorted(partitions):
            high = self._high(consumer, topic, partition, cached=(topic, partition) not in paused)
            if high is not None:
                position = positions.get((topic, partition), high)
                lags[(topic, partition)] = max(0, high - position) + held.get((topic, partition), 0)
        return lags

    def _high(self, consumer: Any, topic: str, partition: int, *, cached: bool) -> int | None:
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=WATERMARK_TIMEOUT, cached=cached)
        except KafkaException as error:
            self._report(f"lag:{topic}", "could not read the end of %s[%d] (%s); its lag is unknown", topic, partition, error.args[0])
            return None
        return int(high) if high >= 0 else None  # a cached watermark is unknown (-1001) before the first fetch
