"""The end of a failed message's path: the record kept, the store that keeps it, and the way back (requeue)."""

from .record import DeadLetterRecord
from .store import DeadLetterStore

__all__ = ["DeadLetterRecord", "DeadLetterStore"]
