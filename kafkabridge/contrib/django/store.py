"""kafkabridge's dead-letter store backed by the FailedMessage table."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from kafkabridge import DeadLetterRecord, DeadLetterStore, MessageId
from kafkabridge.dead_letter.fingerprint import fingerprint
from kafkabridge.wire import encode_headers

from .models import FailedMessage

MAX_HISTORY = 100
"""Attempts kept per row (the newest): a message requeued again and again cannot grow its row without bound."""


class DjangoDeadLetterStore(DeadLetterStore):
    """Upserts one row per Kafka record, so a redelivered failure updates its row instead of adding one.

    The row of a record is its newest one: after an edit and replay, the corrected copy (the original
    stays as it was, status "edited"). Attempts are appended to the row's history, each once.
    """

    def save(self, record: DeadLetterRecord) -> None:
        message = record.message
        facts = {
            "key": message.key,
            "key_text": _storable(_as_text(message.key))[:255],
            "value": message.value,
            "headers": encode_headers(message.headers),
            "message_timestamp": message.timestamp,
            "handler": record.handler,
            "reason": _storable(record.reason),
            "exception_class": _storable(record.exception_class)[:255],
            "exception_message": _storable(record.exception_message),
            "traceback": _storable(record.traceback),
            "attempts": record.attempts,
            "last_failed_at": record.last_failed_at,
            "status": FailedMessage.Status.FAILED,
            "fingerprint": fingerprint(record.handler, record.exception_class, record.exception_message or record.reason),
        }
        attempts = [_attempt(attempt) for attempt in getattr(record, "history", ())]
        with transaction.atomic():
            row = _current_row(message.id)
            if row is None:
                try:
                    with transaction.atomic():
                        FailedMessage.objects.create(
                            source_topic=message.topic, source_partition=message.partition, source_offset=message.offset,
                            first_failed_at=record.first_failed_at, history=attempts[-MAX_HISTORY:], **facts,
                        )
                    return
                except IntegrityError:  # another worker saved the same record first: update its row
                    row = _current_row(message.id)
                    assert row is not None
            for field, value in facts.items():
                setattr(row, field, value)
            row.first_failed_at = min(row.first_failed_at, record.first_failed_at)
            row.history = merge_history(row.history, attempts)
            row.save()

    def mark_resolved(self, message_id: MessageId, handler: str) -> None:
        FailedMessage.objects.filter(
            source_topic=message_id.topic,
            source_partition=message_id.partition,
            source_offset=message_id.offset,
            status=FailedMessage.Status.REQUEUED,
        ).update(status=FailedMessage.Status.RESOLVED, resolved_at=timezone.now())


def _current_row(message_id: MessageId) -> FailedMessage | None:
    """The newest row of the record, locked: the original, or its latest corrected copy."""
    return (
        FailedMessage.objects.select_for_update()
        .filter(source_topic=message_id.topic, source_partition=message_id.partition, source_offset=message_id.offset)
        .order_by("-pk")
        .first()
    )


def _attempt(attempt: Any) -> dict[str, Any]:
    """An :class:`~kafkabridge.dead_letter.record.Attempt` as stored in the row's JSON history."""
    stored = asdict(attempt)
    stored["exception_class"] = _storable(stored.get("exception_class", ""))
    stored["exception_message"] = _storable(stored.get("exception_message", ""))
    return stored


def merge_history(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``stored`` followed by the attempts of ``new`` it does not have yet (a save that is retried adds nothing twice)."""
    seen = {(item.get("number"), item.get("started_at")) for item in stored}
    merged = [*stored, *(item for item in new if (item.get("number"), item.get("started_at")) not in seen)]
    return merged[-MAX_HISTORY:]


def _as_text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="replace")


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text columns refuse: a record whose key or error
    holds one must still be saved (its bytes are kept exactly in the binary columns)."""
    return text.replace("\x00", "\ufffd")
