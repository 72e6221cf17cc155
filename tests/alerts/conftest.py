"""Every log record of this test process, at every level, is checked for webhook secrets after each alerts test
(the worker and bridge processes' logs are checked by the tests that start them)."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from tests.alerts.fake_discord import TOKEN, WEBHOOK_ID

SECRETS = (TOKEN, WEBHOOK_ID, "s3cr3t-token", "wrong-token", "wrong" * 12)


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # the message, and the traceback when there is one


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line() -> Iterator[None]:
    root, handler = logging.getLogger(), _Everything()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    leaked = [line for line in handler.lines if any(secret in line for secret in SECRETS)]
    assert leaked == [], f"webhook secrets in {len(leaked)} log line(s), e.g. {leaked[0][:300]!r}"
