"""The dead-letter path: what is recorded about a message that will not be retried, and where it goes.

A dead letter keeps the raw record (key, value, headers, source topic/partition/offset) and the
facts at the point of failure, bounded so that one huge traceback cannot fill the store. Its JSON
form (a record rides in the task's delivery state while the store is down) is in :mod:`kafkabridge.wire`.
"""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass
from datetime import datetime

from ..message import Message, MessageId

MAX_EXCEPTION_MESSAGE_CHARS = 2_000
MAX_TRACEBACK_CHARS = 20_000
TRUNCATED_MARK = "…[truncated]…"


@dataclass(frozen=True, kw_only=True)
class DeadLetterRecord:
    """A message that exhausted its retries or was given up on, with why and when."""

    message: Message
    handler: str
    """Celery task name of the handler; requeue sends the message back to it."""
    reason: str
    exception_class: str
    exception_message: str
    traceback: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime

    @property
    def message_id(self) -> MessageId:
        return self.message.id

    @classmethod
    def from_error(
        cls,
        message: Message,
        *,
        handler: str,
        reason: str,
        error: BaseException | None,
        first_failed_at: datetime,
        last_failed_at: datetime,
    ) -> DeadLetterRecord:
        """Record ``error`` (None when nothing was raised, e.g. an unreadable record) as it is now."""
        if error is None:
            exception_class, exception_message, trace = "", reason, ""
        else:
            exception_class = f"{type(error).__module__}.{type(error).__qualname__}"
            exception_message = str(error)
            trace = "".join(_traceback.format_exception(error))
        return cls(
            message=message,
            handler=handler,
            reason=truncate(reason, MAX_EXCEPTION_MESSAGE_CHARS),
            exception_class=exception_class,
            exception_message=truncate(exception_message, MAX_EXCEPTION_MESSAGE_CHARS),
            traceback=truncate(trace, MAX_TRACEBACK_CHARS, keep="end"),
            attempts=message.attempt,
            first_failed_at=first_failed_at,
            last_failed_at=last_failed_at,
        )


def truncate(text: str, limit: int, *, keep: str = "start") -> str:
    """``text`` cut to at most ``limit`` characters, with a visible mark where it was cut.

    A traceback keeps its end (``keep="end"``), where the error that mattered is.
    """
    if len(text) <= limit:
        return text
    room = limit - len(TRUNCATED_MARK)
    return TRUNCATED_MARK + text[-room:] if keep == "end" else text[:room] + TRUNCATED_MARK
