"""An operator finds, understands and fixes failures in a real browser, against the console as deployed.

The failures were made by the real bridge and worker (tests/browser/console.py); a requeue reaches the real
worker, whose handler succeeds once the test has healed its downstream.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.admin.models import LogEntry
from playwright.sync_api import Browser, Page, expect

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.browser import pages
from tests.browser.console import EMAILS, SHOP, Console
from tests.browser.roles import Operator

Status = FailedMessage.Status


def test_an_operator_logs_in_through_the_form_and_a_wrong_password_is_refused(
    browser: Browser, console: Console, operators: dict[str, Operator]
) -> None:
    operator = operators["operator"]
    page = browser.new_page(base_url=console.url)
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))

    page.get_by_label("Username").fill(operator.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errornote")).to_contain_text("enter the correct username and password")

    page.get_by_label("Password").fill(operator.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text(operator.username)
    page.close()


def test_the_server_runs_as_deployed_static_files_from_whitenoise_and_no_debug_pages(browser: Browser, console: Console) -> None:
    page = browser.new_page(base_url=console.url)
    page.goto("/admin/login/")
    expect(page.locator("#header")).to_have_css("background-color", re.compile(r"rgb\(\d+, \d+, \d+\)"))  # styled

    stylesheet = page.request.get("/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    assert stylesheet.ok and stylesheet.headers.get("content-encoding") == "gzip"  # collectstatic's copy, by WhiteNoise
    assert "max-age" in stylesheet.headers.get("cache-control", "")
    missing = page.request.get("/no-such-page/")
    assert missing.status == 404 and "URLconf" not in missing.text()  # DEBUG is off: no technical 404 page
    page.close()


def test_the_overview_shows_failures_per_hour_the_top_groups_and_the_live_bridge(
    operator_page: Page, console: Console, screenshots: Path
) -> None:
    page = operator_page
    page.goto("/admin/")
    page.locator("#kb-overview-link").click()
    expect(page).to_have_url(re.compile(re.escape(pages.OVERVIEW)))

    page.goto(pages.OVERVIEW + "?" + "&".join(f"topic={console.topic(name)}" for name in SHOP))
    expect(page.locator("#kb-chart svg")).to_be_visible()
    expect(page.locator("#kb-chart-data thead")).to_contain_text(console.topic("emails"))
    top = page.locator("#kb-top-groups tbody tr").filter(has_text="send_receipt")
    expect(top).to_contain_text(str(EMAILS))
    expect(page.locator("#kb-bridges tbody tr").filter(has_text=console.ns)).to_have_count(1)  # its consumer group
    pages.screenshot(page, screenshots, "overview")


def test_failures_filter_by_topic_and_exception_and_one_opens_with_its_facts(
    operator_page: Page, console: Console, screenshots: Path
) -> None:
    page = operator_page
    page.goto(pages.CHANGELIST)
    pages.choose_filter(page, "source topic", console.topic("invoices"))
    expect(pages.result_rows(page)).to_have_count(len(SHOP["invoices"]))
    pages.screenshot(page, screenshots, "change-list")

    pages.choose_filter(page, "exception class", "builtins.ValueError")
    rows = pages.result_rows(page)
    expect(rows).to_have_count(4)  # the two cancelled orders gave up with GiveUp, not ValueError
    for row in rows.all():
        expect(row).to_contain_text(console.topic("invoices"))
        expect(row).to_contain_text("ValueError")

    rows.first.locator("th a").click()
    expect(page).to_have_url(re.compile(r"/failedmessage/\d+/change/"))
    expect(page.locator("#content")).to_contain_text("has no lines")
    expect(pages.status_of(page)).to_have_text("Failed")


def test_requeue_on_the_failure_page_reruns_the_handler_and_the_failure_becomes_resolved(
    operator_page: Page, console: Console, operators: dict[str, Operator], screenshots: Path, database: None
) -> None:
    page = operator_page
    row = FailedMessage.objects.filter(source_topic=console.topic("payments"), status=Status.FAILED).first()
    page.goto(pages.failure_page(row.pk))
    expect(page.locator("#kb-attempts tbody tr")).to_have_count(3)  # every attempt, not only the last
    expect(page.locator("#kb-attempts")).to_contain_text("payment gateway timed out")
    pages.screenshot(page, screenshots, "failure-page")

    console.heal("payments")
    page.get_by_role("button", name="Requeue", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("Requeued")
    pages.reload_until(page, pages.status_of(page), "Resolved")

    row.refresh_from_db()
    assert (row.status, row.requeue_count, row.requeued_by.username) == (Status.RESOLVED, 1, operators["operator"].username)
    assert recorder.handled_counts(console.ns)[str(row.to_message().id)] == 1
    assert LogEntry.objects.filter(user=row.requeued_by, object_id=str(row.pk), change_message__contains="Requeued").count() == 1

    page.goto(pages.CHANGELIST)
    page.locator("#kb-actions-link").click()  # the audit: who did what
    page.goto(f"{page.url}?user={operators['operator'].username}")  # one operator's (the database is shared)
    expect(page.locator("#kb-actions tbody tr").filter(has_text=str(row))).to_contain_text("Requeued")


def test_bulk_requeue_of_a_filtered_failure_group_of_200_shows_its_progress_until_done(
    operator_page: Page, console: Console, screenshots: Path, database: None
) -> None:
    page = operator_page
    topic = console.topic("emails")
    console.heal("emails")
    page.goto(pages.GROUPS)
    expect(page.locator("#kb-groups tbody tr").filter(has_text="send_receipt")).to_contain_text("SMTP relay refused the receipt")
    pages.screenshot(page, screenshots, "failure-groups")

    page.get_by_label("Topic", exact=True).fill(topic)  # this run's (a shared database may hold other runs' rows)
    page.get_by_role("button", name="Show").click()
    group = page.locator("#kb-groups tbody tr").filter(has_text="send_receipt")
    expect(group).to_contain_text(f"{EMAILS} failures")  # order numbers differ, one group
    group.get_by_role("link", name="Requeue group").click()
    expect(page.locator("#content")).to_contain_text(f"Requeue {EMAILS} failed messages?")
    page.get_by_role("button", name=f"Yes, requeue {EMAILS}").click()
    expect(page.locator("#kb-job-state")).to_have_text("done", timeout=90_000)  # the page reloads itself
    expect(page.locator("#kb-job-done")).to_have_text(f"{EMAILS} of {EMAILS} done")

    support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic=topic, status=Status.RESOLVED).count() == EMAILS,
        timeout=90, what=f"the {EMAILS} requeued receipts to be resolved by the worker",
    )
    handled = {k: v for k, v in recorder.handled_counts(console.ns).items() if k.startswith(f"{topic}/")}
    assert len(handled) == EMAILS and set(handled.values()) == {1}

    page.go_back()  # the confirmation page again: a second click finds nothing left to requeue
    page.reload()
    expect(page.locator("#kb-bulk-nothing")).to_be_visible()


def test_an_editor_corrects_a_poison_payload_and_replays_it(editor_page: Page, console: Console, database: None) -> None:
    page = editor_page
    original = FailedMessage.objects.filter(source_topic=console.topic("shipments"), status=Status.FAILED).first()
    poison = original.value
    page.goto(pages.failure_page(original.pk))
    page.get_by_role("link", name="Edit and replay").click()

    editor = page.get_by_label("Payload (JSON)")
    editor.fill('{"weight": 2.5')
    page.get_by_role("button", name="Replay corrected copy").click()
    expect(page.locator(".errorlist")).to_be_visible()
    original.refresh_from_db()
    assert original.status == Status.FAILED

    editor.fill('{"weight": 2.5}')
    page.get_by_role("button", name="Replay corrected copy").click()
    expect(page).not_to_have_url(re.compile(rf"/{original.pk}/"))
    expect(page.locator("#kb-corrected-from")).to_be_visible()
    pages.reload_until(page, pages.status_of(page), "Resolved")

    copy = FailedMessage.objects.get(corrected_from=original)
    original.refresh_from_db()
    assert original.status == Status.EDITED and original.value == poison  # kept as it came
    assert recorder.facts(console.ns)[str(copy.to_message().id)] == {"weight": 2.5}


def test_a_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(
    viewer_page: Page, console: Console, operators: dict[str, Operator], database: None
) -> None:
    page = viewer_page
    row = FailedMessage.objects.filter(source_topic=console.topic("invoices"), status=Status.FAILED).first()
    before = FailedMessage.objects.filter(pk=row.pk).values().get()
    page.goto(pages.changelist(source_topic=console.topic("invoices")))
    expect(pages.result_rows(page)).to_have_count(len(SHOP["invoices"]))
    expect(page.locator("#kb-bulk-requeue, #kb-bulk-resolve, #kb-bulk-discard")).to_have_count(0)

    page.goto(pages.failure_page(row.pk))
    expect(pages.status_of(page)).to_have_text("Failed")
    for name in ("Requeue", "Resolve", "Discard"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Edit and replay")).to_have_count(0)

    token = pages.csrf_token(page)  # a valid token: the refusal is the permission's, not CSRF's
    base = f"{pages.CHANGELIST}{row.pk}/"
    forged = {f"{base}requeue/": {}, f"{base}resolve/": {}, f"{base}discard/": {}, f"{base}edit/": {"value": '{"x": 1}'},
              f"{pages.CHANGELIST}bulk/requeue/?source_topic={console.topic('invoices')}": {}}
    for url, form in forged.items():
        response = page.request.post(url, form={"csrfmiddlewaretoken": token, **form}, max_redirects=0)
        assert response.status == 403, f"POST {url}: {response.status}"
        assert "CSRF" not in response.text()

    assert FailedMessage.objects.filter(pk=row.pk).values().get() == before
    assert not LogEntry.objects.filter(user__username=operators["viewer"].username).exists()
