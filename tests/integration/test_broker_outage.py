"""A Celery broker (Redis) outage: the bridge holds what it consumed, commits nothing, and catches up after."""

from __future__ import annotations

import subprocess
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support
from tests.app import recorder

SERVICES = str(support.ROOT / "scripts" / "services")


def test_messages_consumed_while_redis_is_down_are_published_once_it_is_back(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    bridge = support.start_bridge(ns, [topic], logs)
    bridges.append(bridge)
    bridge.wait_for_log(r"assigned", timeout=60)

    subprocess.run([SERVICES, "down", "redis"], check=True, capture_output=True)
    try:
        support.produce(topic, ((f"k{i}".encode(), b"v", None) for i in range(300)))
        bridge.wait_for_log(r"Celery broker refused a publish .* partitions paused", timeout=60)
        assert support.committed_offsets(ns, topic) == {0: -1001, 1: -1001, 2: -1001}, "nothing may be committed while held"
    finally:
        subprocess.run([SERVICES, "up", "redis"], check=True, capture_output=True)

    support.wait_until(lambda: recorder.client().hlen(recorder.key("handled", ns)) >= 300, timeout=120, what="all 300 handled after the outage")
    bridge.wait_for_log(r"accepts publishes again", timeout=30)
    ends = support.end_offsets(topic)
    support.wait_until(lambda: support.committed_offsets(ns, topic) == ends, timeout=30, what="offsets committed after the outage")
    assert bridge.alive()
