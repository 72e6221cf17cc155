"""Where dead letters are kept: the interface the Django app (or any other store) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..message import MessageId
from .record import DeadLetterRecord


class DeadLetterStore(ABC):
    """Where dead letters are kept. Subclass it; the Django app's store is the usual one.

    ``save`` must be idempotent per message id: a redelivered message updates its one record.
    Raising from ``save`` is safe: the handler task retries the save and the message stays queued.
    """

    @abstractmethod
    def save(self, record: DeadLetterRecord) -> None:
        """Keep ``record``; insert or update the one record of its message id."""

    @abstractmethod
    def mark_resolved(self, message_id: MessageId, handler: str) -> None:
        """A requeued message was handled; close its record."""
