"""The dead-letter path: what is recorded about a message that will not be retried, and where it goes.

A dead letter keeps the raw record (key, value, headers, source topic/partition/offset) and the
facts at the point of failure, bounded so that one huge traceback cannot fill the store. Its attempt
history (one :class:`Attempt` per failed handler run) is bounded too: it rides in every countdown retry.
Its JSON form (a record rides in the task's delivery state while the store is down) is in
:mod:`kafkabridge.wire`.
"""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from ..message import Message, MessageId

MAX_EXCEPTION_MESSAGE_CHARS = 2_000
MAX_TRACEBACK_CHARS = 20_000
TRUNCATED_MARK = "…[truncated]…"
HISTORY_HEAD = 5
"""Failed attempts kept from the start of a message's history (how it began to fail)..."""
HISTORY_TAIL = 20
"""...and from its end (how it failed last); those between are dropped, their numbers show the gap."""
MAX_ATTEMPT_MESSAGE_CHARS = 500
"""An attempt's exception message is cut to this: the history travels in every retry's kwargs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One handler run that raised: when, how long, where, and what it raised."""

    number: int
    """The message's attempt number (1 for the first run)."""
    started_at: float
    """Unix time (seconds) the run began."""
    seconds: float
    """How long the run took until it raised."""
    host: str
    """The worker that ran it (Celery's node name, e.g. ``celery@host``)."""
    exception_class: str
    exception_message: str

    @classmethod
    def of(cls, error: BaseException, *, number: int, started_at: float, seconds: float, host: str) -> Attempt:
        return cls(
            number=number, started_at=started_at, seconds=seconds, host=host,
            exception_class=exception_class_of(error),
            exception_message=truncate(str(error), MAX_ATTEMPT_MESSAGE_CHARS),
        )


def with_attempt(history: Iterable[Attempt], attempt: Attempt) -> tuple[Attempt, ...]:
    """``history`` (oldest first) with ``attempt`` added, bounded to its first and last attempts."""
    attempts = (*history, attempt)
    if len(attempts) <= HISTORY_HEAD + HISTORY_TAIL:
        return attempts
    return attempts[:HISTORY_HEAD] + attempts[-HISTORY_TAIL:]


def exception_class_of(error: BaseException) -> str:
    """``module.QualifiedName`` of the error's class, as dead letters and attempts record it."""
    return f"{type(error).__module__}.{type(error).__qualname__}"


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
    history: tuple[Attempt, ...] = ()
    """The failed attempts, oldest first (bounded: :func:`with_attempt`); empty for records written
    before attempts were kept, and for messages dead-lettered without a run (unreadable, crashes)."""

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
        history: tuple[Attempt, ...] = (),
    ) -> DeadLetterRecord:
        """Record ``error`` (None when nothing was raised, e.g. an unreadable record) as it is now."""
        if error is None:
            exception_class, exception_message, trace = "", reason, ""
        else:
            exception_class = exception_class_of(error)
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
            history=history,
        )


def truncate(text: str, limit: int, *, keep: str = "start") -> str:
    """``text`` cut to at most ``limit`` characters, with a visible mark where it was cut.

    A traceback keeps its end (``keep="end"``), where the error that mattered is.
    """
    if len(text) <= limit:
        return text
    room = limit - len(TRUNCATED_MARK)
    return TRUNCATED_MARK + text[-room:] if keep == "end" else text[:room] + TRUNCATED_MARK
