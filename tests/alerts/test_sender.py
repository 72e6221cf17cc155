"""The sender against real Redis and the fake Discord: grouping across senders, 429s, a dead webhook, secrets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Iterator

import pytest

from kafkabridge.alerts import AlertEvent, AlertSettings
from kafkabridge.alerts.events import DEAD_LETTER, OUTAGE, group_id
from kafkabridge.alerts.hooks import build_sender
from kafkabridge.alerts.sender import AlertSender
from tests import support
from tests.alerts.fake_discord import FakeDiscord
from tests.app import recorder


@pytest.fixture
def senders() -> Iterator[list[AlertSender]]:
    started: list[AlertSender] = []
    yield started
    for sender in started:
        sender.stop()


def new_sender(ns: str, url: str, senders: list[AlertSender], **options: object) -> AlertSender:
    values: dict = dict(webhook_url=url, prefix=f"{ns}:alerts", redis_url=os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"),
                        window=1.0, update_interval=1.0, quiet_after=60.0, base_url="http://ops.example")
    values.update(options)
    sender = build_sender(AlertSettings(**values))
    assert sender is not None
    senders.append(sender)
    return sender


def event(topic: str = "orders", exception: str = "builtins.RuntimeError", offset: int = 0, **example: object) -> AlertEvent:
    return AlertEvent(DEAD_LETTER, topic, exception, time.time(), {"id": f"{topic}/0@{offset}", "attempts": 3, **example},
                      member=f"{topic}/0@{offset}")


def titles(fake: FakeDiscord, method: str | None = None) -> list[str]:
    return [r.payload["embeds"][0]["title"] for r in fake.accepted(method)]  # type: ignore[index]


def test_events_of_one_group_from_three_senders_make_one_message_then_edits(ns: str, senders: list) -> None:
    with FakeDiscord() as fake:
        three = [new_sender(ns, fake.url, senders) for _ in range(3)]
        for i in range(90):
            three[i % 3].submit(event(offset=i))
        three[0].submit(event(topic="payments", offset=1))

        support.wait_until(lambda: len(fake.accepted("POST")) == 2, timeout=20, what="two messages")
        support.wait_until(lambda: any("90 ×" in t for t in titles(fake)), timeout=20, what="the count of 90")
        support.holds_for(lambda: len(fake.accepted("POST")) == 2, seconds=2.5, what="no third message")
        assert all(not r.problems for r in fake.requests)
        assert len({r.message_id for r in fake.accepted() if "orders" in r.payload["content"]}) == 1  # type: ignore[index]


DYING_PROCESS = """
import os, sys, time
from kafkabridge.alerts import AlertEvent, AlertSettings
from kafkabridge.alerts.hooks import build_sender
sender = build_sender(AlertSettings(webhook_url=os.environ["URL"], prefix=os.environ["PREFIX"], redis_url=os.environ["REDIS"], window=3.0))
for i in range(5):
    sender.submit(AlertEvent("dead_letter", "orders", "builtins.RuntimeError", time.time(), {"id": f"orders/0@{i}"}))
while not sender.groups.client.zcard(sender.groups.due_key):
    time.sleep(0.05)
print("recorded", flush=True)
time.sleep(600)
"""


def test_a_group_left_by_a_process_killed_mid_window_is_sent_by_another(ns: str, senders: list) -> None:
    with FakeDiscord() as fake:
        env = {**os.environ, "URL": fake.url, "PREFIX": f"{ns}:alerts", "REDIS": os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")}
        dying = subprocess.Popen([sys.executable, "-c", DYING_PROCESS], env=env, stdout=subprocess.PIPE, cwd=support.ROOT)
        try:
            assert dying.stdout is not None and dying.stdout.readline().strip() == b"recorded"
        finally:
            dying.kill()  # SIGKILL mid-window: it never sends
            dying.wait()
        survivor = new_sender(ns, fake.url, senders, window=3.0)
        survivor.start()
        support.wait_until(lambda: len(fake.accepted("POST")) == 1, timeout=15, what="the survivor's message")
        assert titles(fake)[0].startswith("🔴 5 × orders")


def test_a_429_storm_delays_alerts_but_loses_none(ns: str, senders: list, caplog: pytest.LogCaptureFixture) -> None:
    with FakeDiscord(rate=4, retry_after=0.4) as fake:
        two = [new_sender(ns, fake.url, senders, window=0.5) for _ in range(2)]
        for i in range(24):
            two[i % 2].submit(event(topic=f"topic-{i}", offset=i))
        support.wait_until(lambda: len(fake.accepted("POST")) == 24, timeout=60, what="24 messages through the 429s")
        limited = [r for r in fake.requests if r.status == 429]
        print(f"\n429 storm: 24 groups, {len(limited)} answers 429, all 24 delivered; last at "
              f"{max(r.at for r in fake.accepted()) - min(r.at for r in fake.requests):.1f}s")
        assert limited, "the fake limited nothing: the test would prove nothing"
        assert sorted(int(t.split("topic-")[1].split(" ")[0]) for t in titles(fake, "POST")) == list(range(24))
        assert sum(s.dropped for s in two) == 0
        # no busy loop: each 429 made every sender wait, so the 429s are far fewer than the time allowed
        assert len(limited) < 24 * 3


def test_a_dead_webhook_is_reported_once_and_not_hammered(ns: str, senders: list, caplog: pytest.LogCaptureFixture) -> None:
    with FakeDiscord() as fake, caplog.at_level(logging.DEBUG):
        wrong = fake.url.replace(fake.token, "wrong-token-" + "y" * 50)
        two = [new_sender(ns, wrong, senders, window=0.2) for _ in range(2)]
        for i in range(6):
            two[i % 2].submit(event(topic=f"t{i}", offset=i))
        support.wait_until(lambda: fake.requests, timeout=10, what="the first request")
        support.holds_for(lambda: len(fake.requests) <= 2, seconds=3, what="no more than the first requests")
        reports = [r for r in caplog.records if "No alert is sent for an hour" in r.getMessage()]
        assert len(reports) == 1 and "401" in reports[0].getMessage()
        assert not any("wrong-token" in r.getMessage() for r in caplog.records)


def test_the_webhook_url_is_redacted_from_connection_errors(ns: str, senders: list, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-token-" + "z" * 40
    with caplog.at_level(logging.DEBUG):
        sender = new_sender(ns, f"http://127.0.0.1:9/api/webhooks/42/{secret}", senders, window=0.2, timeout=2.0)
        sender.submit(event())
        support.wait_until(lambda: any("could not send" in r.getMessage() for r in caplog.records), timeout=15, what="the failure log")
    text = "\n".join(r.getMessage() + (str(r.exc_info) if r.exc_info else "") for r in caplog.records)
    assert secret not in text and "/api/webhooks/42" not in text and "<webhook>" in text


def test_quiet_and_resolved_groups_say_so_in_place(ns: str, senders: list) -> None:
    with FakeDiscord() as fake:
        sender = new_sender(ns, fake.url, senders, window=0.3, update_interval=0.5, quiet_after=1.5)
        sender.submit(event(topic="quiet", offset=1))
        for i in range(2):
            sender.submit(event(topic="healed", offset=i))
        support.wait_until(lambda: len(fake.accepted("POST")) == 2, timeout=10, what="two messages")
        for i in range(2):
            sender.submit(("resolve", f"healed/0@{i}", None))
        support.wait_until(lambda: any(t.startswith("✅ 2 × healed") for t in titles(fake, "PATCH")), timeout=10, what="resolved")
        support.wait_until(lambda: any(t.startswith("⏸ 1 × quiet") for t in titles(fake, "PATCH")), timeout=10, what="quiet")
        assert {r.message_id for r in fake.accepted("PATCH")} <= {r.message_id for r in fake.accepted("POST")}
        assert sender.groups.client.zcard(sender.groups.due_key) == 0  # both groups ended


def test_an_outage_group_recovers(ns: str, senders: list) -> None:
    with FakeDiscord() as fake:
        sender = new_sender(ns, fake.url, senders, window=0.3, update_interval=0.3)
        sender.submit(AlertEvent(OUTAGE, "database", "", time.time(), {"exception": "OperationalError", "message": "down"}))
        support.wait_until(lambda: len(fake.accepted("POST")) == 1, timeout=10, what="the outage message")
        sender.submit(("resolve", None, group_id(OUTAGE, "database", "")))
        support.wait_until(lambda: any(t == "✅ database recovered after 1 error(s)" for t in titles(fake, "PATCH")), timeout=10, what="recovered")


def test_a_full_queue_drops_counts_and_logs(ns: str, senders: list, caplog: pytest.LogCaptureFixture) -> None:
    sender = new_sender(ns, "http://127.0.0.1:9/api/webhooks/1/t", senders, queue_size=1)
    sender.start()
    sender.groups.client.connection_pool.disconnect()
    started = time.monotonic()
    for i in range(2000):
        sender.submit(event(offset=i))
    assert time.monotonic() - started < 1.0  # never blocks
    assert sender.dropped > 0
    assert any("dropped" in r.getMessage() and "queue is full" in r.getMessage() for r in caplog.records)


def test_the_json_webhook_gets_the_groups_facts(ns: str, senders: list) -> None:
    with FakeDiscord(discord=False) as hook:
        sender = new_sender(ns, hook.url, senders, notifier="json", window=0.3)
        for i in range(3):
            sender.submit(event(offset=i, message="@everyone *boom*"))
        support.wait_until(lambda: hook.accepted(), timeout=10, what="the JSON alert")
        body = hook.accepted()[0].payload
        assert body is not None and body["kind"] == "dead_letter" and body["topic"] == "orders" and body["count"] == 3
        assert body["status"] == "open" and body["admin_url"].startswith("http://ops.example/admin/") and len(body["examples"]) == 3
