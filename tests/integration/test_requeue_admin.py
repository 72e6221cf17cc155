"""Operators requeue dead letters from the Django admin: POST only, with permission, once per click."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient
from django.contrib.admin.models import LogEntry
from django.test import Client

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.integration.admin_support import CHANGELIST, admin_client, change_page, failed_row, post_action
from tests.app.tasks import REQUEUE_RETRY_POLICY


@pytest.fixture
def dead_letter(ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None) -> FailedMessage:
    topic = f"{ns}.requeue"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"key", b'{"order": 7}', [("h", b"\xff\x00")])])
    bridges.append(support.start_bridge(ns, [topic], logs))
    return support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")


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
    page = viewer.get(change_page(dead_letter))
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


def requeue_state(row: FailedMessage) -> tuple:
    row = FailedMessage.objects.get(pk=row.pk)
    return row.status, row.requeue_count, row.requeued_by_id, row.requeued_at


def test_a_requeue_post_without_a_csrf_token_or_without_a_login_is_refused_and_changes_nothing(
    ns: str, requeues_to_this_test: None, database: None
) -> None:
    # Given a dead letter, a superuser's session and an anonymous visitor who has a CSRF cookie of the login page
    row = failed_row(f"{ns}.requeue", handler="tests.app.tasks.fails_until_healed")
    before = requeue_state(row)
    broker = redis.Redis.from_url(support.BROKER_URL)
    action = {"action": "requeue_selected", "_selected_action": [row.pk]}
    operator, user = admin_client(f"{ns}-op", superuser=True)
    operator.get(CHANGELIST)
    anonymous = Client(enforce_csrf_checks=True)
    anonymous.get(CHANGELIST, follow=True)  # the login page sets the cookie
    anonymous_token = anonymous.cookies["csrftoken"].value

    try:
        # When they post the requeue action without a token, with a wrong one, or anonymously
        without_token = operator.post(CHANGELIST, action)
        wrong_token = operator.post(CHANGELIST, {**action, "csrfmiddlewaretoken": "x" * 64})
        anonymous_without_token = anonymous.post(CHANGELIST, action)
        anonymous_with_token = anonymous.post(CHANGELIST, {**action, "csrfmiddlewaretoken": anonymous_token})

        # Then each is refused, and nothing was claimed, logged or queued
        assert without_token.status_code == wrong_token.status_code == anonymous_without_token.status_code == 403
        assert anonymous_with_token.status_code == 302 and "/login/" in anonymous_with_token["Location"]
        assert requeue_state(row) == before
        assert not LogEntry.objects.filter(object_id=str(row.pk)).exists()
        assert broker.llen(ns) == 0

        # (and the same click with the token is what queues it, so the checks above looked in the right place)
        post_action(operator, row)
        assert requeue_state(row)[:3] == (FailedMessage.Status.REQUEUED, 1, user.pk)
        assert broker.llen(ns) == 1
    finally:
        broker.delete(ns)


def test_a_requeued_message_gets_fresh_attempts_and_its_whole_retry_budget(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path,
    requeues_to_this_test: None, database: None
) -> None:
    # Given a message whose handler needs every attempt of its policy, dead-lettered after all of them failed
    topic = f"{ns}.requeue_retries"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"k", b"needs three attempts", None)])
    bridges.append(support.start_bridge(ns, [topic], logs))
    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")
    support.settled(ns, topic)
    budget = list(range(1, REQUEUE_RETRY_POLICY.max_attempts + 1))
    assert row.attempts == REQUEUE_RETRY_POLICY.max_attempts and recorder.attempts(ns, f"{topic}/0@0") == budget

    # When the downstream is healed (the handler succeeds on its last attempt only) and an operator requeues it
    recorder.client().set(recorder.key("healed", ns), 1)
    operator, _ = admin_client(f"{ns}-op", can_requeue=True)
    post_action(operator, row)

    # Then it runs from attempt 1 through the last one again, and is resolved
    support.wait_until(lambda: FailedMessage.objects.get(pk=row.pk).status == FailedMessage.Status.RESOLVED,
                       timeout=60, what="the requeued message to be resolved")
    support.settled(ns, topic)
    assert recorder.attempts(ns, f"{topic}/0@0") == budget + budget
    assert recorder.handled_counts(ns) == {f"{topic}/0@0": 1}
    row = FailedMessage.objects.get(pk=row.pk)
    assert row.requeue_count == 1 and row.attempts == REQUEUE_RETRY_POLICY.max_attempts
