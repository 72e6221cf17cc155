r"""Fixtures of the browser tests: Playwright drives Debian's Chromium against the console as deployed.

Playwright never downloads a browser here: ``scripts/setup`` installs ``/usr/bin/chromium`` and every launch
names it. Django refuses ORM calls while an event loop runs in the thread, and Playwright's sync API runs one,
hence DJANGO_ALLOW_ASYNC_UNSAFE (only this process's test code queries; the server is another process).

Screenshots go to ``KB_SCREENSHOTS_DIR``, else to a temporary directory. The README's are refreshed on a
database and Redis databases of their own, so that no other run's failures or bridges show::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kafkabridge_screenshots CELERY_BROKER_URL=redis://127.0.0.1:6379/9 \
    KBTEST_REDIS_URL=redis://127.0.0.1:6379/10 KB_SCREENSHOTS_DIR=docs/screenshots .venv/bin/python -m pytest tests/browser
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator
from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient
from playwright.sync_api import Browser, Page

from tests import support
from tests.browser import console as console_rig
from tests.browser.console import Console
from tests.browser.roles import Operator, make_operators

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs it (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def console(services: None, django_db_setup: None, django_db_blocker: object, kafka_admin: AdminClient,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console of this run: its own namespace (topics, queue, Redis keys), failures made by the real pipeline."""
    # "acme…" sorts before other runs' topics ("kbt…"): the change list's topic filter lists the first 500 values
    # in order, and a shared test database collects hundreds of other runs' topics.
    ns = f"acme{uuid4().hex[:6]}"
    try:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            running = console_rig.start(ns, tmp_path_factory.mktemp("console"), kafka_admin)
        yield running
        running.stop()
    finally:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            _forget(ns, kafka_admin)


def _forget(ns: str, kafka_admin: AdminClient) -> None:
    """The run's rows, bulk jobs, users (and their admin log), topics and Redis keys go: the database and services are shared."""
    from django.contrib.auth.models import User

    from kafkabridge.contrib.django.models import BulkJob, FailedMessage
    from tests.app import recorder

    BulkJob.objects.filter(query__contains=f"{ns}.").delete()
    rows = FailedMessage.objects.filter(source_topic__startswith=f"{ns}.")
    rows.exclude(corrected_from=None).delete()
    rows.delete()
    User.objects.filter(username__startswith=f"{ns}-").delete()
    client = recorder.client()
    keys = list(client.scan_iter(f"{ns}:*", count=1000))
    if keys:
        client.delete(*keys)
    kafka_admin.delete_topics([f"{ns}.{name}" for name in console_rig.SHOP])


@pytest.fixture(scope="session")
def base_url(console: Console) -> str:
    """pytest-playwright's pages resolve relative URLs against the console."""
    return console.url


@pytest.fixture(scope="session")
def operators(console: Console, django_db_blocker: object) -> dict[str, Operator]:
    """One user per role (viewer, operator, editor), created in the database the server uses."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        return make_operators(console.ns)


@pytest.fixture(scope="session")
def signed_in(browser: Browser, console: Console, operators: dict[str, Operator],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each role's session, from the login form's POST (the form itself has its own test); tests open contexts with it."""
    states: dict[str, Path] = {}
    directory = tmp_path_factory.mktemp("sessions")
    for role, operator in operators.items():
        context = browser.new_context(base_url=console.url)
        context.request.get("/admin/login/")  # the CSRF cookie
        token = next(cookie["value"] for cookie in context.cookies() if cookie["name"] == "csrftoken")
        response = context.request.post("/admin/login/?next=/admin/", max_redirects=0, form={
            "csrfmiddlewaretoken": token, "username": operator.username, "password": operator.password, "next": "/admin/"})
        assert response.status == 302, f"{operator.username} could not log in: {response.status}"
        states[role] = directory / f"{role}.json"
        context.storage_state(path=states[role])
        context.close()
    return states


def _page_for(role: str, browser: Browser, console: Console, signed_in: dict[str, Path]) -> Iterator[Page]:
    context = browser.new_context(base_url=console.url, storage_state=signed_in[role], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def operator_page(browser: Browser, console: Console, signed_in: dict[str, Path]) -> Iterator[Page]:
    """A page of a user who may requeue and resolve (not edit, not discard)."""
    yield from _page_for("operator", browser, console, signed_in)


@pytest.fixture
def editor_page(browser: Browser, console: Console, signed_in: dict[str, Path]) -> Iterator[Page]:
    """A page of a user who may also edit and replay."""
    yield from _page_for("editor", browser, console, signed_in)


@pytest.fixture
def viewer_page(browser: Browser, console: Console, signed_in: dict[str, Path]) -> Iterator[Page]:
    """A page of a view-only user."""
    yield from _page_for("viewer", browser, console, signed_in)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("KB_SCREENSHOTS_DIR")
    directory = (support.ROOT / configured) if configured else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, show the tail of the server's, the worker's and the bridge's logs."""
    report = yield
    running = getattr(item, "funcargs", {}).get("console")
    if report.failed and call.when == "call" and isinstance(running, Console):
        for name, tail in running.tails().items():
            report.sections.append((f"log {name}", tail))
    return report
