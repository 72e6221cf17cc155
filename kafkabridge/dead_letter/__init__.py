"""The end of a failed message's path: the record kept and the store that keeps it (the way back is ``kafkabridge.requeue``)."""

from .record import Attempt, DeadLetterRecord
from .store import DeadLetterStore

__all__ = ["Attempt", "DeadLetterRecord", "DeadLetterStore"]
