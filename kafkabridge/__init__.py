"""kafkabridge: Kafka consumers for Celery teams — every message handed to a Celery task, at least once.

Define a handler::

    from kafkabridge import kafka_handler, RetryPolicy, Message, GiveUp

    @kafka_handler("orders", retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=300.0, jitter=0.2))
    def handle_order(message: Message) -> None:
        order = message.json()
"""

from .consumer.bridge import Bridge
from .consumer.build import build_bridge
from .dead_letter import DeadLetterRecord, DeadLetterStore
from .errors import (
    ConfigurationError, GiveUp, KafkaBridgeError, PoisonMessage, ProduceError, PublishError, SchemaError,
    SerializationError,
)
from .worker.handler import HandlerTask, kafka_handler
from .hooks import Hooks
from .message import Message, MessageId
from .producer import Producer, SendResult, Sent
from .ratelimit.limits import Limit
from .replay import replay
from .requeue import requeue
from .retry_policy import RetryPolicy
from .runtime import configure
from .settings import BridgeSettings

__all__ = [
    "Bridge",
    "BridgeSettings",
    "ConfigurationError",
    "DeadLetterRecord",
    "DeadLetterStore",
    "GiveUp",
    "HandlerTask",
    "Hooks",
    "KafkaBridgeError",
    "Limit",
    "Message",
    "MessageId",
    "PoisonMessage",
    "ProduceError",
    "Producer",
    "PublishError",
    "RetryPolicy",
    "SchemaError",
    "SendResult",
    "Sent",
    "SerializationError",
    "build_bridge",
    "configure",
    "kafka_handler",
    "replay",
    "requeue",
]
