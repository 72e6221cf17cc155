"""Helpers of the console tests (no tests here): failures saved through the real store, operators with roles, POSTs with CSRF."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from uuid import uuid4

from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from kafkabridge import DeadLetterRecord, Message
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.contrib.django.store import DjangoDeadLetterStore
from kafkabridge.dead_letter.record import Attempt

CHANGELIST = reverse("admin:kafkabridge_failures_failedmessage_changelist")


def unique_name() -> str:
    """A namespace for a test that touches only the database (the ``ns`` fixture also sweeps Redis, which takes seconds)."""
    return f"kbc{uuid4().hex[:10]}"


def url(name: str, *args: object) -> str:
    return reverse(f"admin:kafkabridge_failures_failedmessage_{name}", args=args)


def operator(username: str, *actions: str) -> tuple[Client, User]:
    """A staff user with ``view`` plus ``actions`` (console permissions), logged in, CSRF enforced."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    codenames = [f"{action}_failedmessage" for action in ("view", *actions)]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="kafkabridge_failures", codename__in=codenames))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def post(client: Client, path: str, data: dict | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    """A POST as the browser makes it: with the CSRF token of a page the client opened."""
    client.get(CHANGELIST)
    return client.post(path, {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}, **kwargs)


def attempt(number: int, *, host: str = "worker-1", message: str = "boom", started_at: float | None = None) -> Attempt:
    return Attempt(number=number, started_at=started_at if started_at is not None else time.time(), seconds=0.25, host=host,
                   exception_class="builtins.RuntimeError", exception_message=message)


def save_failure(topic: str, offset: int, *, message: str = "order 7 failed", value: bytes = b'{"order": 7}',
                 handler: str = "tests.app.tasks.record", exception_class: str = "builtins.RuntimeError",
                 history: tuple[Attempt, ...] = (), key: bytes | None = b"key") -> FailedMessage:
    """A dead letter written by the store the workers use (fingerprint and history included)."""
    now = datetime.now(timezone.utc)
    record = DeadLetterRecord(
        message=Message(topic=topic, partition=0, offset=offset, key=key, value=value, headers=(("h", b"\xff\x00"),),
                        timestamp=now),
        handler=handler, reason=f"retries exhausted: {message}", exception_class=exception_class,
        exception_message=message, traceback="Traceback (most recent call last): ...", attempts=max(1, len(history)),
        first_failed_at=now, last_failed_at=now, history=history,
    )
    DjangoDeadLetterStore().save(record)
    return FailedMessage.objects.filter(source_topic=topic, source_offset=offset).latest("pk")


def status(row: FailedMessage) -> str:
    return FailedMessage.objects.values_list("status", flat=True).get(pk=row.pk)
