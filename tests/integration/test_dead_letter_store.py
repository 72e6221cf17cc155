"""The Django dead-letter store against the real database: one row per Kafka record, however often it fails."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.contrib.django.store import DjangoDeadLetterStore
from kafkabridge import DeadLetterRecord, Message


def record(ns: str, *, attempts: int, failed_at: datetime, reason: str) -> DeadLetterRecord:
    message = Message(topic=f"{ns}.store", partition=1, offset=7, key=b"\xffkey", value=b"\x00raw", headers=(("a", b"1"), ("a", None)), attempt=attempts)
    return DeadLetterRecord.from_error(message, handler="h", reason=reason, error=RuntimeError(reason), first_failed_at=failed_at, last_failed_at=failed_at)


def test_dead_lettering_the_same_message_twice_updates_one_row(ns: str, database: None) -> None:
    store = DjangoDeadLetterStore()
    first = datetime(2026, 1, 1, tzinfo=timezone.utc)
    store.save(record(ns, attempts=3, failed_at=first, reason="first"))
    FailedMessage.objects.filter(source_topic=f"{ns}.store").update(status=FailedMessage.Status.REQUEUED, requeue_count=1)

    store.save(record(ns, attempts=5, failed_at=first + timedelta(minutes=5), reason="second"))

    rows = FailedMessage.objects.filter(source_topic=f"{ns}.store")
    assert rows.count() == 1
    row = rows.get()
    assert (row.attempts, row.reason, row.status, row.requeue_count) == (5, "second", FailedMessage.Status.FAILED, 1)
    assert row.first_failed_at == first and row.last_failed_at == first + timedelta(minutes=5)
    assert row.to_message() == Message(topic=f"{ns}.store", partition=1, offset=7, key=b"\xffkey", value=b"\x00raw", headers=(("a", b"1"), ("a", None)))


def test_mark_resolved_only_resolves_a_requeued_row(ns: str, database: None) -> None:
    store = DjangoDeadLetterStore()
    dead = record(ns, attempts=1, failed_at=datetime(2026, 1, 1, tzinfo=timezone.utc), reason="x")
    store.save(dead)
    store.mark_resolved(dead.message_id, "h")
    assert FailedMessage.objects.get(source_topic=f"{ns}.store").status == FailedMessage.Status.FAILED

    FailedMessage.objects.filter(source_topic=f"{ns}.store").update(status=FailedMessage.Status.REQUEUED)
    store.mark_resolved(dead.message_id, "h")
    row = FailedMessage.objects.get(source_topic=f"{ns}.store")
    assert row.status == FailedMessage.Status.RESOLVED and row.resolved_at is not None
