"""The bridge-level alerts: a bridge that stopped unexpectedly (noticed by another process, reported once however
many watch), a clean stop that is not reported, and an outage shorter than its threshold that sends nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from kafkabridge import BridgeSettings
from kafkabridge.alerts import AlertHooks
from tests import support
from tests.alerts.fake_discord import WEBHOOK_ID, FakeDiscord

REDIS_URL = os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")
SILENCE = 2.0
"""The watchers' BRIDGE_STOPPED threshold; the bridges beat every 0.5 s (their status expires after 1.5 s)."""


def watcher(ns: str, url: str, **kinds: dict) -> AlertHooks:
    """AlertHooks of another process of the deployment (same alerts PREFIX, same webhook)."""
    return AlertHooks(BridgeSettings(alerts={
        "WEBHOOK_URL": url, "PREFIX": f"{ns}:alerts", "REDIS_URL": REDIS_URL, "WINDOW": 0.3, "UPDATE_INTERVAL": 0.3,
        "KINDS": {"bridge_stopped": {"THRESHOLD": SILENCE}, **kinds},
    }))


def titles(fake: FakeDiscord) -> list[str]:
    return sorted(r.payload["embeds"][0]["title"] for r in fake.accepted("POST"))  # type: ignore[index]


def test_a_killed_bridge_is_reported_once_by_the_processes_watching_and_a_cleanly_stopped_one_is_not(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic], partitions=2)
    with FakeDiscord() as fake:
        env = support.process_env(ns, extra={"KAFKABRIDGE_ALERTS_WEBHOOK_URL": fake.url, "KAFKABRIDGE_STATUS_INTERVAL": "0.5"})
        killed = support.start_bridge(ns, [topic], logs, group_id=f"{ns}-killed", env=env)
        stopped = support.start_bridge(ns, [topic], logs, group_id=f"{ns}-stopped", env=env)
        bridges += [killed, stopped]
        watchers = [watcher(ns, fake.url), watcher(ns, fake.url)]
        try:
            for hooks in watchers:
                hooks.sender.start()  # type: ignore[union-attr]
            client = redis.Redis.from_url(REDIS_URL)
            support.wait_until(lambda: client.zcard(f"{ns}:alerts:bridges") == 2, timeout=60, what="both bridges' heartbeats")

            killed.signal(signal.SIGKILL)
            assert stopped.stop() == 0

            support.wait_until(lambda: titles(fake), timeout=SILENCE + 10, what="the alert")
            support.holds_for(lambda: len(fake.accepted("POST")) == 1, seconds=SILENCE + 1, what="no second alert")
            assert titles(fake) == [f"🔴 1 × {ns}-killed bridge stopped unexpectedly"]
            [field] = fake.accepted("POST")[0].payload["embeds"][0]["fields"]  # type: ignore[index]
            assert f"pid {killed.process.pid}" in field["value"] and "no clean stop" in field["value"]
        finally:
            for hooks in watchers:
                hooks.sender.stop()  # type: ignore[union-attr]
        assert [r for r in fake.requests if r.problems] == []
        assert not [b.name for b in (killed, stopped) if fake.token in b.log() or WEBHOOK_ID in b.log()], "the webhook URL in a bridge's log"


def test_an_outage_shorter_than_its_threshold_sends_nothing_and_a_longer_one_is_reported_then_recovered(ns: str) -> None:
    with FakeDiscord() as fake:
        hooks = watcher(ns, fake.url, outage={"THRESHOLD": 1.0})
        try:
            hooks.on_service_error("kafka", KafkaException("all brokers down"))
            hooks.on_service_restored("kafka")  # back within the threshold
            support.holds_for(lambda: not fake.requests, seconds=2.0, what="no alert for a short outage")

            hooks.on_service_error("kafka", KafkaException("all brokers down"))
            hooks.on_service_error("kafka", KafkaException("all brokers down"))  # inside the threshold: one event waits
            support.wait_until(lambda: titles(fake) == ["🔴 1 × kafka unreachable"], timeout=10, what="the outage")
            hooks.on_service_restored("kafka")
            support.wait_until(lambda: any(r.payload["embeds"][0]["title"] == "✅ kafka recovered after 1 error(s)"  # type: ignore[index]
                                           for r in fake.accepted("PATCH")), timeout=10, what="the recovery")
            assert len(fake.accepted("POST")) == 1
        finally:
            hooks.sender.stop()  # type: ignore[union-attr]
