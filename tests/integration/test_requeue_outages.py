"""Requeue across outages: a refused enqueue gives the claim back; "resolved" waits out a database outage.

Both stop a service: run them on a test instance of their own (see tests/support.py ``outage``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from kafkabridge.contrib.django import services
from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.integration.admin_support import CHANGELIST, admin_client, failed_row

pytestmark = pytest.mark.outage  # stops Redis and PostgreSQL: on a service set of its own (scripts/test's group "outage")


def test_a_requeue_the_broker_refuses_gives_the_claim_back_and_reports_the_error(
    ns: str, requeues_to_this_test: None, database: None
) -> None:
    row = failed_row(f"{ns}.requeue", handler="tests.app.tasks.fails_until_healed")
    operator, _ = admin_client(f"{ns}-op", superuser=True)
    form = operator.get(CHANGELIST)

    with support.outage("redis"):
        report = services.requeue([row.pk], actor=None)
        clicked = operator.post(CHANGELIST, {"action": "requeue_selected", "_selected_action": [row.pk],
                                             "csrfmiddlewaretoken": form.cookies["csrftoken"].value}, follow=True)

    assert report.requeued == [] and report.skipped == []
    assert [failed.pk for failed, _ in report.errors] == [row.pk]
    assert clicked.status_code == 200 and f"Could not requeue {row}" in clicked.content.decode()
    after = FailedMessage.objects.get(pk=row.pk)
    assert (after.status, after.requeue_count) == (FailedMessage.Status.FAILED, 0), "the claim must be given back"


def test_a_requeued_message_handled_while_the_database_is_down_ends_resolved_once_it_is_back(
    ns: str, logs: Path, requeues_to_this_test: None, database: None
) -> None:
    # Given a requeued dead letter whose handler now succeeds, queued while no worker runs
    row = failed_row(f"{ns}.requeue", handler="tests.app.tasks.fails_until_healed")
    recorder.client().set(recorder.key("healed", ns), 1)
    assert services.requeue([row.pk], actor=None).requeued
    message_id = str(row.to_message().id)

    # When a worker handles it while PostgreSQL is down
    connection.close()
    worker = None
    try:
        with support.outage("postgres"):
            worker = support.start_worker(ns, logs)
            support.wait_until(lambda: recorder.handled_counts(ns).get(message_id) == 1, timeout=60, what="the requeued message handled")
            worker.wait_for_log(rf"could not mark {message_id} resolved", timeout=60)

        # Then marking it resolved is retried until the database is back, without running the handler again
        support.wait_until(lambda: FailedMessage.objects.get(pk=row.pk).status == FailedMessage.Status.RESOLVED,
                           timeout=120, what="the row to be resolved after the outage")
        support.holds_for(lambda: recorder.handled_counts(ns) == {message_id: 1}, seconds=support.SETTLE_SECONDS,
                          what="the handler ran once")
    finally:
        if worker is not None:
            worker.stop()
    after = FailedMessage.objects.get(pk=row.pk)
    assert after.resolved_at is not None and after.requeue_count == 1


def test_a_requeue_the_broker_refuses_leaves_who_requeued_last_and_when_as_they_were(
    ns: str, requeues_to_this_test: None, database: None
) -> None:
    # Given a dead letter requeued once before (it failed again), by a first operator, a day ago
    earlier = timezone.now() - timedelta(days=1)
    _, first_operator = admin_client(f"{ns}-first", can_requeue=True)
    row = failed_row(f"{ns}.requeue", handler="tests.app.tasks.fails_until_healed",
                     requeue_count=1, requeued_by=first_operator, requeued_at=earlier)
    _, second_operator = admin_client(f"{ns}-second", can_requeue=True)

    # When a second operator's requeue is refused by the broker
    with support.outage("redis"):
        assert services.requeue([row.pk], actor=second_operator).errors

    # Then the row says what happened last: the first operator's requeue
    after = FailedMessage.objects.get(pk=row.pk)
    assert (after.status, after.requeue_count) == (FailedMessage.Status.FAILED, 1)
    assert (after.requeued_by.username, after.requeued_at) == (f"{ns}-first", earlier)
