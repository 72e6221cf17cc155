"""``manage.py sendtestalert`` sends a sample the webhook accepts, and says plainly why it could not."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.alerts.fake_discord import FakeDiscord


def run() -> str:
    out = io.StringIO()
    call_command("sendtestalert", stdout=out)
    return out.getvalue()


def test_it_sends_a_sample_within_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeDiscord() as fake:
        monkeypatch.setenv("KAFKABRIDGE_ALERTS_WEBHOOK_URL", fake.url)
        assert "Sent a test alert with the discord notifier (message id 13" in run()
        [request] = fake.requests
        assert request.status == 200 and request.problems == []


@pytest.mark.parametrize("case", ["wrong token", "nothing listening", "no url", "rate limited"])
def test_it_says_what_went_wrong_without_showing_the_url(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeDiscord(rate=0.001) as fake:
        url = {"wrong token": fake.url.replace(fake.token, "wrong" * 12), "nothing listening": fake.url.replace(
            f":{fake.server.server_port}/", ":9/"), "no url": "", "rate limited": fake.url}[case]
        monkeypatch.setenv("KAFKABRIDGE_ALERTS_WEBHOOK_URL", url)
        if case == "rate limited":
            run()  # the first request passes; the next is limited
        with pytest.raises(CommandError) as raised:
            run()
    said = str(raised.value)
    expected = {"wrong token": "answered 401", "nothing listening": "could not send the test alert: webhook request failed",
                "no url": "no webhook URL: set the environment variable KAFKABRIDGE_ALERTS_WEBHOOK_URL",
                "rate limited": "rate-limiting this address"}[case]
    assert expected in said
    assert "/api/webhooks" not in said and "wrong" * 12 not in said and fake.token not in said
