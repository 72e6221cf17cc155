"""Bulk actions by filter: a confirmation with the count, a throttled background job, one per filter, a cap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from kafkabridge.contrib.django.conf import console_settings
from kafkabridge.contrib.django.models import BulkJob, FailedMessage
from tests import support
from tests.app import recorder
from tests.integration.test_console_support import unique_name, operator, post, save_failure, url

FAST = {"BULK_RATE": 2000.0, "BULK_BATCH": 20}


def test_bulk_requeue_of_a_filter_acts_on_every_page_once_even_when_clicked_twice_and_the_rows_turn_resolved(
    ns: str, worker: support.ServiceProcess, requeues_to_this_test: None, database: None
) -> None:
    # Given 60 failures of one exception on a topic (more than a change-list page) and 3 of another
    topic = f"{ns}.bulk"
    for offset in range(60):
        save_failure(topic, offset, message=f"order {offset} failed")
    for offset in range(60, 63):
        save_failure(topic, offset, message="other", exception_class="builtins.KeyError")
    client, user = operator(f"{ns}-op", "requeue")
    query = {"source_topic__exact": topic, "exception_class__exact": "builtins.RuntimeError", "p": "2", "o": "1"}

    # When the operator asks, confirms, and confirms again
    confirm = client.get(url("bulk", "requeue"), query)
    with override_settings(KAFKABRIDGE_CONSOLE=FAST):
        first = post(client, url("bulk", "requeue") + "?" + _qs(query))
        second = post(client, url("bulk", "requeue") + "?" + _qs(query), follow=True)
        job = BulkJob.objects.get(pk=int(first["Location"].rstrip("/").rsplit("/", 1)[1]))
        support.wait_until(lambda: BulkJob.objects.get(pk=job.pk).finished, timeout=60, what="the bulk job to finish")

    # Then the page said how many, one job did them all, the worker ran each once, the audit has each
    assert confirm.status_code == 200 and "Yes, requeue 60" in confirm.content.decode()
    assert second.status_code == 200 and BulkJob.objects.filter(query=job.query).count() == 1  # the running one, or nothing left
    job.refresh_from_db()
    assert (job.state, job.total, job.done, job.failed, job.skipped) == ("done", 60, 60, 0, 0)
    support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic=topic, status=FailedMessage.Status.RESOLVED).count() == 60,
        timeout=60, what="every requeued row to be resolved",
    )
    assert set(recorder.handled_counts(ns).values()) == {1} and len(recorder.handled_counts(ns)) == 60
    assert FailedMessage.objects.filter(source_topic=topic, status=FailedMessage.Status.FAILED).count() == 3
    assert LogEntry.objects.filter(user=user, change_message=f"Requeued (bulk job #{job.pk})").count() == 60
    progress = client.get(url("job", job.pk)).content.decode()
    assert '<strong id="kb-job-state">done</strong>' in progress and "60 of 60 done" in progress


def test_a_second_click_while_a_job_runs_finds_that_job(database: None) -> None:
    ns = unique_name()
    for offset in range(30):
        save_failure(f"{ns}.bulk", offset)
    client, _ = operator(f"{ns}-op", "requeue")
    path = url("bulk", "resolve") + f"?source_topic__exact={ns}.bulk"

    with override_settings(KAFKABRIDGE_CONSOLE={"BULK_RATE": 20.0, "BULK_BATCH": 5}):  # 1.5 s: still running at the second click
        first = post(client, path)
        second = post(client, path)
        support.wait_until(lambda: BulkJob.objects.get(query=f"source_topic__exact={ns}.bulk").finished, timeout=30, what="the job")

    assert first["Location"] == second["Location"]
    assert BulkJob.objects.get(query=f"source_topic__exact={ns}.bulk").done == 30
    assert FailedMessage.objects.filter(source_topic=f"{ns}.bulk", status=FailedMessage.Status.RESOLVED).count() == 30


def test_above_the_cap_the_page_says_so_and_a_post_starts_nothing(database: None) -> None:
    ns = unique_name()
    for offset in range(6):
        save_failure(f"{ns}.bulk", offset)
    client, _ = operator(f"{ns}-op", "requeue", "discard")
    path = url("bulk", "discard") + f"?source_topic__exact={ns}.bulk"

    with override_settings(KAFKABRIDGE_CONSOLE={"BULK_CAP": 5}):
        page = client.get(path).content.decode()
        post(client, path)

    assert 'id="kb-bulk-over-cap"' in page and "6 failed messages match this filter, more than the 5" in page
    assert "Yes, discard" not in page
    assert not BulkJob.objects.filter(query=f"source_topic__exact={ns}.bulk").exists()
    assert FailedMessage.objects.filter(source_topic=f"{ns}.bulk", status=FailedMessage.Status.FAILED).count() == 6


def test_bulk_discard_needs_the_discard_permission(database: None) -> None:
    ns = unique_name()
    save_failure(f"{ns}.bulk", 0)
    client, _ = operator(f"{ns}-op", "requeue")
    path = url("bulk", "discard") + f"?source_topic__exact={ns}.bulk"

    assert client.get(path).status_code == 403 and post(client, path).status_code == 403
    assert 'id="kb-bulk-discard"' not in client.get(url("changelist")).content.decode()


def _abandoned_job(action: str, status: str, rows: int, done: int) -> tuple[Any, BulkJob, list[FailedMessage]]:
    """A job of ``action`` on ``rows`` failures that acted on its first ``done`` (they are ``status`` now),
    then lost its web process: no progress for a minute. Returns an operator's client, the job, the rows."""
    ns = unique_name()
    failures = [save_failure(f"{ns}.bulk", offset) for offset in range(rows)]
    client, user = operator(f"{ns}-op", action)
    FailedMessage.objects.filter(pk__in=[row.pk for row in failures[:done]]).update(status=status)
    stale = timezone.now() - timedelta(minutes=1)
    job = BulkJob.objects.create(action=action, query=f"source_topic__exact={ns}.bulk", created_by=user, total=rows, done=done,
                                 max_pk=failures[-1].pk, cursor=failures[done - 1].pk, state="running", heartbeat=stale, started_at=stale)
    return client, job, failures


def test_a_job_whose_runner_died_is_taken_over_from_its_cursor_by_its_progress_page(database: None) -> None:
    # Given a discard job that handled its first 4 of 10 rows, then its web process died
    client, job, _ = _abandoned_job("discard", FailedMessage.Status.DISCARDED, rows=10, done=4)

    # When someone looks at its progress
    with override_settings(KAFKABRIDGE_CONSOLE=FAST):
        client.get(url("job", job.pk))
        support.wait_until(lambda: BulkJob.objects.get(pk=job.pk).finished, timeout=30, what="the job to be taken over")

    # Then a new runner finished it from where it was
    job.refresh_from_db()
    assert (job.state, job.done, job.skipped) == ("done", 10, 0)
    assert LogEntry.objects.filter(change_message=f"Discarded (bulk job #{job.pk})").count() == 6


def test_a_job_whose_runner_died_is_taken_over_when_someone_opens_the_failures_list(database: None) -> None:
    # Given a resolve job that handled 2 of its 6 rows, then its web process restarted
    client, job, rows = _abandoned_job("resolve", FailedMessage.Status.RESOLVED, rows=6, done=2)

    # When an operator opens the failures list, not the job's page
    with override_settings(KAFKABRIDGE_CONSOLE=FAST):
        assert client.get(url("changelist")).status_code == 200
        support.wait_until(lambda: BulkJob.objects.get(pk=job.pk).finished, timeout=30, what="the job to be taken over")

    # Then a new runner finished it from its cursor, each remaining row once
    job.refresh_from_db()
    assert (job.state, job.done, job.skipped) == ("done", 6, 0)
    assert LogEntry.objects.filter(change_message=f"Resolved (bulk job #{job.pk})").count() == 4
    assert set(FailedMessage.objects.filter(pk__in=[row.pk for row in rows]).values_list("status", flat=True)) == {"resolved"}


def _qs(query: dict[str, str]) -> str:
    return urlencode(query)


def test_an_unknown_console_setting_is_refused_with_the_known_ones() -> None:
    with override_settings(KAFKABRIDGE_CONSOLE={"BULK_CAPS": 5}), pytest.raises(ImproperlyConfigured, match="BULK_CAPS.*BULK_CAP"):
        console_settings()
