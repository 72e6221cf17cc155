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
