"""Helpers of the admin tests: operators' clients, the requeue action, dead-letter rows made directly."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kafkabridge.contrib.django.models import FailedMessage

CHANGELIST = reverse("admin:kafkabridge_failures_failedmessage_changelist")


def change_page(row: FailedMessage) -> str:
    return reverse("admin:kafkabridge_failures_failedmessage_change", args=[row.pk])


def admin_client(username: str, *, superuser: bool = False, can_requeue: bool = False, can_replay: bool = False) -> tuple[Client, User]:
    user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    user.user_permissions.add(Permission.objects.get(codename="view_failedmessage"))
    if can_requeue:
        user.user_permissions.add(Permission.objects.get(codename="requeue_failedmessage"))
    if can_replay:
        user.user_permissions.add(Permission.objects.get(codename="replay_failedmessage"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def post_action(client: Client, row: FailedMessage, action: str = "requeue_selected") -> None:
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [row.pk], "csrfmiddlewaretoken": page.cookies["csrftoken"].value},
    )
    assert response.status_code in (200, 302)


def failed_row(topic: str, *, key: bytes | None = b"key", value: bytes | None = b"{}", headers: list[tuple[str, bytes | None]] = (),
               handler: str = "tests.app.tasks.record", **facts: Any) -> FailedMessage:
    """A dead letter as the store writes it (offset 0 of partition 0 of ``topic``), made with the ORM."""
    now = timezone.now()
    return FailedMessage.objects.create(
        source_topic=topic, source_partition=0, source_offset=0, key=key, value=value,
        headers=[[name, None if data is None else base64.b64encode(data).decode()] for name, data in headers],
        handler=handler, attempts=facts.pop("attempts", 1), first_failed_at=now, last_failed_at=now,
        **{"reason": "retries exhausted", "exception_class": "builtins.RuntimeError", **facts},
    )
