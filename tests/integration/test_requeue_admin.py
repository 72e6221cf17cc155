"""Operators requeue dead letters from the Django admin: POST only, with permission, once per click."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

import kafkabridge
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge import runtime
from tests import support
from tests.app import recorder

CHANGELIST = reverse("admin:kafkabridge_failures_failedmessage_changelist")


@pytest.fixture
def requeues_to_this_test(ns: str) -> Iterator[None]:
    """The admin in this process requeues onto the queue of this test's worker."""
    before = runtime.current()
    kafkabridge.configure(replace(before.settings, queue=ns), hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
    yield
    kafkabridge.configure(before.settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)


@pytest.fixture
def dead_letter(ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None) -> FailedMessage:
    topic = f"{ns}.requeue"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"key", b'{"order": 7}', [("h", b"\xff\x00")])])
    bridges.append(support.start_bridge(ns, [topic], logs))
    return support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")


def admin_client(username: str, *, superuser: bool = False, can_requeue: bool = False) -> tuple[Client, User]:
    user = User.objects.create_user(username, password="pw", is_staff=True, is_superuser=superuser)
    user.user_permissions.add(Permission.objects.get(codename="view_failedmessage"))
    if can_requeue:
        user.user_permissions.add(Permission.objects.get(codename="requeue_failedmessage"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def post_action(client: Client, row: FailedMessage) -> None:
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    response = client.post(
        CHANGELIST,
        {"action": "requeue_selected", "_selected_action": [row.pk], "csrfmiddlewaretoken": page.cookies["csrftoken"].value},
    )
    assert response.status_code in (200, 302)


def handled_count(ns: str, row: FailedMessage) -> int:
    return int(recorder.client().hget(recorder.key("handled", ns), str(row.to_message().id)) or 0)


def test_requeue_reruns_the_handler_and_resolves_the_row_and_a_double_submit_requeues_once(
    ns: str, dead_letter: FailedMessage, requeues_to_this_test: None, database: None
) -> None:
    operator, user = admin_client(f"{ns}-op", can_requeue=True)
    recorder.client().set(recorder.key("healed", ns), 1)

    post_action(operator, dead_letter)
    post_action(operator, dead_letter)  # the double submit

    support.wait_until(
        lambda: FailedMessage.objects.get(pk=dead_letter.pk).status == FailedMessage.Status.RESOLVED,
        timeout=60, what="the requeued message to be resolved",
    )
    row = FailedMessage.objects.get(pk=dead_letter.pk)
    assert row.requeue_count == 1 and row.requeued_by == user and row.requeued_at is not None
    assert handled_count(ns, row) == 1
    assert LogEntry.objects.filter(user=user, object_id=str(row.pk), change_message__contains="Requeued").count() == 1


def test_a_requeued_message_that_fails_again_is_failed_with_its_requeue_count(
    ns: str, dead_letter: FailedMessage, requeues_to_this_test: None, database: None
) -> None:
    operator, _ = admin_client(f"{ns}-op", superuser=True)
    attempts_key = recorder.key(f"attempts:{dead_letter.to_message().id}", ns)
    post_action(operator, dead_letter)

    support.wait_until(lambda: recorder.client().llen(attempts_key) == 2, timeout=60, what="the requeued run")
    support.wait_until(
        lambda: FailedMessage.objects.get(pk=dead_letter.pk).status == FailedMessage.Status.FAILED,
        timeout=60, what="the row to be failed again",
    )
    row = FailedMessage.objects.get(pk=dead_letter.pk)
    assert row.requeue_count == 1
    assert FailedMessage.objects.filter(source_topic=row.source_topic).count() == 1


def test_staff_without_the_permission_cannot_requeue_and_get_never_requeues(
    ns: str, dead_letter: FailedMessage, requeues_to_this_test: None, database: None
) -> None:
    viewer, _ = admin_client(f"{ns}-viewer")
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200 and "requeue_selected" not in page.content.decode()
    post_action(viewer, dead_letter)

    operator, _ = admin_client(f"{ns}-op", can_requeue=True)
    response = operator.get(CHANGELIST, {"action": "requeue_selected", "_selected_action": [dead_letter.pk]})
    assert response.status_code in (200, 302)  # the admin ignores (or rejects) action parameters on GET

    row = FailedMessage.objects.get(pk=dead_letter.pk)
    assert row.status == FailedMessage.Status.FAILED and row.requeue_count == 0


def test_the_detail_page_shows_payload_headers_and_traceback_escaped(
    ns: str, dead_letter: FailedMessage, database: None
) -> None:
    viewer, _ = admin_client(f"{ns}-viewer")
    page = viewer.get(reverse("admin:kafkabridge_failures_failedmessage_change", args=[dead_letter.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "&quot;order&quot;: 7" in body  # pretty JSON, escaped
    assert "Traceback (most recent call last)" in body
    assert "00000000  ff 00" in body  # the binary header as hex


def test_concurrent_requeues_of_one_row_claim_it_once(
    ns: str, dead_letter: FailedMessage, requeues_to_this_test: None, database: None
) -> None:
    import threading

    from django.db import connection

    from kafkabridge.contrib.django import services

    recorder.client().set(recorder.key("healed", ns), 1)  # the requeued run succeeds: the row cannot turn failed again
    reports: list[services.RequeueReport] = []
    start = threading.Barrier(4)

    def operator() -> None:
        start.wait()
        reports.append(services.requeue([dead_letter.pk], actor=None))
        connection.close()

    threads = [threading.Thread(target=operator) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(len(report.requeued) for report in reports) == 1
    assert sum(len(report.skipped) for report in reports) == 3
    assert FailedMessage.objects.get(pk=dead_letter.pk).requeue_count == 1
