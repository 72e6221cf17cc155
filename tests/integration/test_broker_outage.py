"""A Celery broker (Redis) outage: the bridge holds what it consumed, commits nothing, and catches up after."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from django.conf import settings

from kafkabridge import BridgeSettings

from tests import support
from tests.app import recorder

pytestmark = pytest.mark.outage  # stops Redis: on a service set of its own (scripts/test's group "outage")

NOTHING_COMMITTED = {0: -1001, 1: -1001, 2: -1001}


def test_messages_consumed_while_redis_is_down_are_published_once_it_is_back(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    bridge = support.start_bridge(ns, [topic], logs)
    bridges.append(bridge)
    bridge.wait_for_log(r"assigned", timeout=60)
    commit_interval = BridgeSettings.from_mapping(settings.KAFKABRIDGE).commit_interval

    with support.outage("redis"):
        support.produce(topic, ((f"k{i}".encode(), b"v", None) for i in range(300)))
        bridge.wait_for_log(r"Celery broker refused a publish .* partitions paused", timeout=60)
        assert support.committed_offsets(ns, topic) == NOTHING_COMMITTED, "nothing may be committed while held"
        # Commits run every commit_interval: watch several of them, while Redis is still down.
        support.holds_for(lambda: support.committed_offsets(ns, topic) == NOTHING_COMMITTED,
                          seconds=6 * commit_interval, what="no offset committed while the broker is down")
        assert bridge.alive()

    support.wait_until(lambda: recorder.client().hlen(recorder.key("handled", ns)) >= 300, timeout=120, what="all 300 handled after the outage")
    bridge.wait_for_log(r"accepts publishes again", timeout=30)
    ends = support.end_offsets(topic)
    support.wait_until(lambda: support.committed_offsets(ns, topic) == ends, timeout=30, what="offsets committed after the outage")
    assert bridge.alive()
