"""Every operator action goes to the admin's LogEntry table, with the user: the console's audit trail."""

from __future__ import annotations

from typing import Callable, Iterable

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model


def log(user: AbstractBaseUser | AnonymousUser | None, rows: Iterable[Model], message: str | Callable[[Model], str]) -> None:
    """One LogEntry per row (``message`` may depend on the row), written in one INSERT.

    Actions without a signed-in user (scripts, tests calling services directly) have no LogEntry:
    its user column is required.
    """
    if user is None or not user.is_authenticated:
        return
    entries = [
        LogEntry(
            user_id=user.pk, content_type_id=ContentType.objects.get_for_model(row, for_concrete_model=False).pk,
            object_id=str(row.pk), object_repr=str(row)[:200], action_flag=CHANGE,
            change_message=message(row) if callable(message) else message,
        )
        for row in rows
    ]
    LogEntry.objects.bulk_create(entries)
