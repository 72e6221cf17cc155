"""AlertHooks maps hook events to alerts: dead letters, a requeue that failed again (not twice), lag over its
threshold, a Celery broker outage and its recovery; kinds switched off send nothing."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from confluent_kafka import KafkaException

from kafkabridge import BridgeSettings, Message
from kafkabridge.alerts import AlertHooks
from kafkabridge.dead_letter import DeadLetterRecord
from tests import support
from tests.alerts.fake_discord import FakeDiscord


def hooks_for(ns: str, url: str, **kinds: dict) -> AlertHooks:
    return AlertHooks(BridgeSettings(alerts={
        "WEBHOOK_URL": url, "PREFIX": f"{ns}:alerts", "REDIS_URL": os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"),
        "WINDOW": 0.3, "UPDATE_INTERVAL": 0.3, "KINDS": {"lag": {"THRESHOLD": 100}, **kinds},
    }))


def record(offset: int, error: Exception) -> DeadLetterRecord:
    now = datetime.now(timezone.utc)
    return DeadLetterRecord.from_error(Message(topic="orders", partition=0, offset=offset, key=b"k"), handler="h", reason="r",
                                       error=error, first_failed_at=now, last_failed_at=now)


def titles(fake: FakeDiscord) -> list[str]:
    return sorted(r.payload["embeds"][0]["title"] for r in fake.accepted("POST"))  # type: ignore[index]


def test_hook_events_become_one_alert_per_kind_topic_and_exception(ns: str) -> None:
    with FakeDiscord() as fake:
        hooks = hooks_for(ns, fake.url)
        try:
            hooks.on_dead_lettered(record(1, RuntimeError("boom")))
            hooks.on_dead_lettered(record(2, RuntimeError("boom")))
            hooks.on_requeue_failed(record(3, RuntimeError("again")))
            hooks.on_dead_lettered(record(3, RuntimeError("again")))  # the same failure: not a second alert
            hooks.on_partition_lag({("orders", 0): 60, ("orders", 1): 60, ("quiet", 0): 5})  # orders: 120 > 100
            support.wait_until(lambda: len(titles(fake)) == 3, timeout=10, what="three messages")
            support.holds_for(lambda: len(titles(fake)) == 3, seconds=1, what="no fourth message")
            assert titles(fake) == ["🔴 1 × orders failed again after a requeue (RuntimeError)", "🔴 1 × orders lagging",
                                    "🔴 2 × orders dead-lettered (RuntimeError)"]
        finally:
            hooks.sender.stop()  # type: ignore[union-attr]


def test_a_broker_outage_is_reported_then_recovered_and_switched_off_kinds_say_nothing(ns: str) -> None:
    with FakeDiscord() as fake:
        hooks = hooks_for(ns, fake.url, produce_failed={"ENABLED": False})
        try:
            hooks.on_publish_failed([], ConnectionError("Redis refused the publish"))
            hooks.on_produce_failed("orders", KafkaException("gone"))
            support.wait_until(lambda: titles(fake) == ["🔴 1 × celery broker unreachable"], timeout=10, what="the outage")
            hooks.on_batch_published([])
            support.wait_until(lambda: any(r.payload["embeds"][0]["title"] == "✅ celery broker recovered after 1 error(s)"  # type: ignore[index]
                                           for r in fake.accepted("PATCH")), timeout=10, what="the recovery")
            assert "recovered" in fake.accepted("PATCH")[-1].payload["embeds"][0]["description"]  # type: ignore[index]
            assert len(fake.accepted("POST")) == 1
        finally:
            hooks.sender.stop()  # type: ignore[union-attr]
