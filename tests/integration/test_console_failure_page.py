"""The failure page: its buttons (POST, CSRF, permission), the attempt history, and what a view-only user gets."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.integration.test_console_support import CHANGELIST, attempt, operator, post, save_failure, status, unique_name, url


def test_the_requeue_button_reruns_the_handler_and_the_row_turns_resolved_and_a_second_click_does_nothing(
    ns: str, worker: support.ServiceProcess, requeues_to_this_test: None, database: None
) -> None:
    # Given a failure whose handler now succeeds, and an operator allowed to requeue
    row = save_failure(f"{ns}.page", 0, handler="tests.app.tasks.fails_until_healed")
    recorder.client().set(recorder.key("healed", ns), 1)
    client, user = operator(f"{ns}-op", "requeue")
    page = client.get(url("change", row.pk)).content.decode()
    assert 'id="kb-requeue-form"' in page and ">Requeue</button>" in page

    # When they click Requeue, twice
    first = post(client, url("requeue", row.pk))
    second = post(client, url("requeue", row.pk), follow=True)

    # Then the handler ran once, the row is resolved, the click is in the admin log with the user
    assert first.status_code == 302 and first["Location"] == url("change", row.pk)
    assert "Skipped 1 message(s) not in status" in second.content.decode()
    support.wait_until(lambda: status(row) == FailedMessage.Status.RESOLVED, timeout=60, what="the row to be resolved")
    assert recorder.handled_counts(ns) == {f"{ns}.page/0@0": 1}
    assert FailedMessage.objects.get(pk=row.pk).requeue_count == 1
    assert LogEntry.objects.filter(user=user, object_id=str(row.pk), change_message__startswith="Requeued").count() == 1


def test_a_view_only_user_sees_no_buttons_and_forged_posts_are_refused_with_403(database: None) -> None:
    ns = unique_name()
    row = save_failure(f"{ns}.page", 0)
    viewer, _ = operator(f"{ns}-viewer")

    page = viewer.get(url("change", row.pk)).content.decode()
    responses = [post(viewer, url(name, row.pk), {"value": "{}"}) for name in ("requeue", "resolve", "discard", "edit")]

    assert "kb-failure-actions" not in page and "Requeue</button>" not in page and "Edit and replay" not in page
    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    assert status(row) == FailedMessage.Status.FAILED and FailedMessage.objects.filter(source_topic=row.source_topic).count() == 1


def test_discard_needs_its_own_permission_and_closes_the_row_with_an_audit_entry(database: None) -> None:
    ns = unique_name()
    row = save_failure(f"{ns}.page", 0)
    requeuer, _ = operator(f"{ns}-op", "requeue")
    admin, user = operator(f"{ns}-admin", "discard")

    refused = post(requeuer, url("discard", row.pk))
    assert refused.status_code == 403 and status(row) == FailedMessage.Status.FAILED
    assert 'id="kb-discard-form"' not in requeuer.get(url("change", row.pk)).content.decode()

    assert post(admin, url("discard", row.pk)).status_code == 302
    row.refresh_from_db()
    assert row.status == FailedMessage.Status.DISCARDED and row.discarded_at is not None
    assert LogEntry.objects.filter(user=user, object_id=str(row.pk), change_message="Discarded").count() == 1
    assert 'id="kb-discard-form"' not in admin.get(url("change", row.pk)).content.decode()  # nothing left to discard


def test_resolve_closes_a_failure_without_running_it(database: None) -> None:
    ns = unique_name()
    row = save_failure(f"{ns}.page", 0)
    client, _ = operator(f"{ns}-op", "requeue")

    assert post(client, url("resolve", row.pk)).status_code == 302

    row.refresh_from_db()
    assert row.status == FailedMessage.Status.RESOLVED and row.resolved_at is not None and row.requeue_count == 0


def test_every_attempt_is_kept_once_and_a_failure_after_a_requeue_adds_to_the_same_history(database: None) -> None:
    ns = unique_name()
    # Given a dead letter with three attempts, saved twice (a retried save)
    first_run = tuple(attempt(number, host="worker-a", message=f"down ({number})") for number in (1, 2, 3))
    save_failure(f"{ns}.page", 0, history=first_run)
    save_failure(f"{ns}.page", 0, history=first_run)
    # When it is requeued and fails twice more on another host
    second_run = tuple(attempt(number, host="worker-b", message=f"still down ({number})") for number in (1, 2))
    row = save_failure(f"{ns}.page", 0, history=second_run)

    # Then its row holds all five attempts in order, and the page shows them as a table
    assert [(item["host"], item["number"]) for item in row.history] == [
        ("worker-a", 1), ("worker-a", 2), ("worker-a", 3), ("worker-b", 1), ("worker-b", 2)
    ]
    viewer, _ = operator(f"{ns}-viewer")
    page = viewer.get(url("change", row.pk)).content.decode()
    table = page[page.index('id="kb-attempts"'):page.index("</table>", page.index('id="kb-attempts"'))]
    assert table.count("<tr><td>") == 5 and "worker-b" in table and "still down (2)" in table and "0.250 s" in table


def test_ticked_rows_are_discarded_by_the_list_action_only_with_the_discard_permission(database: None) -> None:
    ns = unique_name()
    rows = [save_failure(f"{ns}.page", offset) for offset in range(2)]
    action = {"action": "discard_selected", "_selected_action": [row.pk for row in rows]}
    requeuer, _ = operator(f"{ns}-op", "requeue")
    admin, user = operator(f"{ns}-admin", "discard")

    post(requeuer, CHANGELIST, action)
    assert [status(row) for row in rows] == ["failed", "failed"]
    post(admin, CHANGELIST, action)

    assert [status(row) for row in rows] == ["discarded", "discarded"]
    assert LogEntry.objects.filter(user=user, change_message="Discarded").count() == 2
