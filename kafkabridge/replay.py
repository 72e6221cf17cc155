"""Sending a dead letter back to its source topic: the Kafka side of an operator's "replay" click.

Beside :func:`kafkabridge.requeue` (back to the handler, through Celery), a replay produces the
record again to the topic it came from, so every consumer of that topic sees it again, this
bridge's handler included (as a new record, at a new offset). The operator console claims the
record first, then calls :func:`replay` and waits for Kafka's acknowledgement.
"""

from __future__ import annotations

from . import runtime
from .message import Message
from .producer import Producer, SendResult

REPLAYED_FROM_HEADER = "kafkabridge-replayed-from"
"""``topic/partition@offset`` of the dead-lettered record this one replays."""
REPLAYED_BY_HEADER = "kafkabridge-replayed-by"
"""Who replayed it (the operator's user name)."""


def replay(producer: Producer, message: Message, *, by: str) -> SendResult:
    """Produce ``message`` again to its topic: the same key, value and headers (in order, repeats kept),
    plus :data:`REPLAYED_FROM_HEADER` and :data:`REPLAYED_BY_HEADER`. The partition is the partitioner's
    choice for the key, as for the original. Wait on the result (``result(timeout)``) before telling
    anyone it was replayed. With tracing on, the send continues the record's trace (its ``traceparent``
    header is replaced by the send's).
    """
    headers = [*message.headers, (REPLAYED_FROM_HEADER, str(message.id).encode()), (REPLAYED_BY_HEADER, by.encode())]
    result = producer.send(message.topic, message.value, key=message.key, headers=headers)
    result.on_success(lambda sent: runtime.current().hooks.emit("on_replayed", message.id, sent.topic, sent.partition, sent.offset))
    return result
