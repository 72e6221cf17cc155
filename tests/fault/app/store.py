"""The Django dead-letter store, plus a journal line once a dead letter is saved (and before the ledger hears of it)."""

from __future__ import annotations

from kafkabridge import DeadLetterRecord
from kafkabridge.contrib.django.store import DjangoDeadLetterStore

from . import journal


class JournalingStore(DjangoDeadLetterStore):
    def save(self, record: DeadLetterRecord) -> None:
        super().save(record)
        journal.write("dead", record.message, reason=record.reason[:120], attempts=record.attempts)
