"""kafkabridge's dead-letter store backed by the FailedMessage table."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from kafkabridge import DeadLetterRecord, DeadLetterStore, MessageId
from kafkabridge.wire import encode_headers

from .models import FailedMessage


class DjangoDeadLetterStore(DeadLetterStore):
    """Upserts one row per Kafka record, so a redelivered failure updates its row instead of adding one."""

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
        }
        with transaction.atomic():
            row, created = FailedMessage.objects.select_for_update().get_or_create(
                source_topic=message.topic,
                source_partition=message.partition,
                source_offset=message.offset,
                defaults={**facts, "first_failed_at": record.first_failed_at},
            )
            if not created:
                for field, value in facts.items():
                    setattr(row, field, value)
                row.first_failed_at = min(row.first_failed_at, record.first_failed_at)
                row.save()

    def mark_resolved(self, message_id: MessageId, handler: str) -> None:
        FailedMessage.objects.filter(
            source_topic=message_id.topic,
            source_partition=message_id.partition,
            source_offset=message_id.offset,
            status=FailedMessage.Status.REQUEUED,
        ).update(status=FailedMessage.Status.RESOLVED, resolved_at=timezone.now())


def _as_text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="replace")


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text columns refuse: a record whose key or error
    holds one must still be saved (its bytes are kept exactly in the binary columns)."""
    return text.replace("\x00", "\ufffd")
