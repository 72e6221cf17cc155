"""What the browser tests do on the console's pages, in an operator's words (URLs and markup: the console's)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Locator, Page, expect

CHANGELIST = "/admin/kafkabridge_failures/failedmessage/"
GROUPS = f"{CHANGELIST}groups/"
OVERVIEW = f"{CHANGELIST}overview/"


def failure_page(pk: int) -> str:
    return f"{CHANGELIST}{pk}/change/"


def changelist(**filters: str) -> str:
    return f"{CHANGELIST}?{urlencode(filters)}" if filters else CHANGELIST


def choose_filter(page: Page, title: str, choice: str) -> None:
    """Click ``choice`` under "By <title>" in the change list's filter sidebar."""
    page.locator(f'#changelist-filter details[data-filter-title="{title}"]').get_by_role("link", name=choice, exact=True).click()


def result_rows(page: Page) -> Locator:
    return page.locator("#result_list tbody tr")


def status_of(page: Page) -> Locator:
    """The failure page's status, as the operator reads it."""
    return page.locator(".field-status .readonly")


def reload_until(page: Page, locator: Locator, text: str, *, timeout: float = 30.0) -> None:
    """Reload ``page`` until ``locator`` shows ``text`` (the failure page does not refresh itself); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            expect(locator).to_have_text(text, timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


def csrf_token(page: Page) -> str:
    """The token of the page's forms (the header's logout form has one on every admin page)."""
    return page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value") or ""


def screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
