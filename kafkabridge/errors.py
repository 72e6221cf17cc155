"""The one error hierarchy of kafkabridge: everything it raises on purpose derives from KafkaBridgeError."""

from __future__ import annotations


class KafkaBridgeError(Exception):
    """Root of every error kafkabridge raises on purpose."""


class ConfigurationError(KafkaBridgeError):
    """The settings, routes or retry policies cannot work together; the message says what to change."""


class GiveUp(KafkaBridgeError):
    """Raised by a handler: do not retry this message, dead-letter it now with this reason."""

    def __init__(self, reason: str = "handler gave up") -> None:
        super().__init__(reason)
        self.reason = reason


class PoisonMessage(GiveUp):
    """The message itself cannot be read (bad JSON, bad encoding); retrying cannot help.

    ``raw`` keeps the bytes that failed so the error can say what was wrong with them.
    """

    def __init__(self, reason: str, *, raw: bytes | None) -> None:
        super().__init__(reason)
        self.raw = raw


class PublishError(KafkaBridgeError):
    """Handing messages to the Celery broker failed after ``published`` of them were confirmed."""

    def __init__(self, cause: BaseException, *, published: int) -> None:
        super().__init__(f"publishing to the Celery broker failed after {published} message(s): {cause!r}")
        self.cause = cause
        self.published = published


class SerializationError(KafkaBridgeError):
    """A value, key or header given to ``Producer.send`` cannot be turned into bytes; nothing was sent."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"cannot send {what}: {problem}")
        self.what = what
        self.problem = problem


class ProduceError(KafkaBridgeError):
    """A record did not reach Kafka: the broker or the client refused it, or the local queue stayed full.

    ``kafka_error`` is librdkafka's ``KafkaError`` when it reported one (None for a full local queue).
    """

    def __init__(self, topic: str, problem: str, *, kafka_error: object | None = None) -> None:
        super().__init__(f"could not send to {topic!r}: {problem}")
        self.topic = topic
        self.problem = problem
        self.kafka_error = kafka_error



class SchemaError(GiveUp):
    """A message does not match its topic's JSON Schema: dead-lettered at once, never retried.

    ``path`` is where in the document it fails (``$.lines[0].qty``), ``problem`` what is wrong there.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"schema: {path}: {problem}")
        self.path = path
        self.problem = problem
