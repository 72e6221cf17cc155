"""confluent-kafka's records and partitions, turned into kafkabridge's own plain values."""

from __future__ import annotations

from typing import Any, Iterable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, TopicPartition

from ..message import Message, from_millis
from .offsets import PartitionKey


def to_message(raw: Any) -> Message:
    """A kafkabridge Message from a confluent-kafka one; a record whose headers cannot be read keeps the reason."""
    problem = None
    try:
        headers = tuple((str(name), value if value is None else bytes(value)) for name, value in raw.headers() or ())
    except Exception as error:  # librdkafka could not decode them: the handler must not guess
        headers, problem = (), f"headers could not be read: {error!r}"
    timestamp_type, timestamp_ms = raw.timestamp()
    timestamp = None if timestamp_type == TIMESTAMP_NOT_AVAILABLE else from_millis(timestamp_ms)
    return Message(
        topic=raw.topic(), partition=raw.partition(), offset=raw.offset(), key=raw.key(), value=raw.value(),
        headers=headers, timestamp=timestamp, problem=problem,
    )


def keys(partitions: Iterable[TopicPartition]) -> set[PartitionKey]:
    """Plain (topic, partition) keys of confluent-kafka partitions."""
    return {(tp.topic, tp.partition) for tp in partitions}


def topic_partitions(partitions: Iterable[PartitionKey]) -> list[TopicPartition]:
    """confluent-kafka partitions for plain keys, in a stable order."""
    return [TopicPartition(topic, partition) for topic, partition in sorted(partitions)]


def describe(partitions: Iterable[PartitionKey]) -> str:
    """``orders[0], orders[1]`` for logs."""
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions)) or "nothing"
