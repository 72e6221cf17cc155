"""``python manage.py prunefailures [--older-than 30d] [--dry-run]``: delete resolved and discarded failures past
their retention age, in batches. A row waiting for an operator (failed, requeued, replayed, edited) is never
deleted, whatever its age: the dead letter may be the only copy of the message.

A row's age counts from when it was resolved (``resolved_at``) or discarded (``discarded_at``); rows closed
before those fields existed count from their last change (``updated_at``). Each batch re-checks status and
age in its DELETE, so a row an operator reopens meanwhile stays. Run it daily from cron or Celery beat.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from kafkabridge.contrib.django.conf import console_settings
from kafkabridge.contrib.django.models import FailedMessage

DEFAULT_BATCH_SIZE = 1000
"""Rows per DELETE: each batch is its own short transaction, so the table is never locked for long."""
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
CLOSED_AT = {FailedMessage.Status.RESOLVED: "resolved_at", FailedMessage.Status.DISCARDED: "discarded_at"}
"""The statuses that may be pruned, each with the field that says since when it has been closed."""


def parse_age(text: str) -> timedelta:
    """``"30d"`` → 30 days; units s, m, h, d, w; the age must be more than zero."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not an age: write a positive number and a unit (s, m, h, d or w), e.g. 30d")
    return timedelta(seconds=float(match[1]) * UNITS[match[2]])


def prunable(status: str, cutoff: datetime) -> QuerySet[FailedMessage]:
    """Rows in ``status`` (resolved or discarded) closed before ``cutoff``, except originals of edited copies."""
    return (
        FailedMessage.objects.annotate(closed_at=Coalesce(CLOSED_AT[status], "updated_at"))
        .annotate(has_copies=Exists(FailedMessage.objects.filter(corrected_from=OuterRef("pk"))))
        .filter(status=status, closed_at__lt=cutoff, has_copies=False)
    )


def prune(status: str, cutoff: datetime, *, batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False) -> int:
    """Delete (or with ``dry_run`` count) the rows of ``status`` closed before ``cutoff``; returns how many."""
    rows = prunable(status, cutoff)
    if dry_run:
        return rows.count()
    deleted = 0
    while ids := list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        _, by_model = FailedMessage.objects.filter(pk__in=rows.filter(pk__in=ids).values("pk")).delete()  # checked again
        count = by_model.get(FailedMessage._meta.label, 0)
        deleted += count
        if count == 0:  # every selected row was reopened meanwhile
            break
    return deleted


class Command(BaseCommand):
    help = ("Delete resolved and discarded failed messages older than an age (KAFKABRIDGE_CONSOLE['RETENTION'], default 30d), "
            "in batches. Unresolved rows are never deleted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h, 2w (default: the RETENTION setting)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per DELETE (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        text = options["older_than"] or console_settings().RETENTION
        try:
            age = parse_age(text)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        cutoff = timezone.now() - age
        counts = {status: prune(status, cutoff, batch_size=options["batch_size"], dry_run=options["dry_run"]) for status in CLOSED_AT}
        kept = FailedMessage.objects.exclude(status__in=list(CLOSED_AT)).count()
        done = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{done} {counts[FailedMessage.Status.RESOLVED]} resolved and {counts[FailedMessage.Status.DISCARDED]} discarded "
            f"failed message(s) closed before {cutoff:%Y-%m-%d %H:%M:%S %Z} (older than {text.strip()})."
            + (" Nothing was deleted (--dry-run)." if options["dry_run"] else "")
        )
        self.stdout.write(f"Kept {kept} unresolved failed message(s) (failed, requeued, replayed, edited): never pruned.")
