"""Messages go from Kafka through the bridge to a real Celery worker, and offsets are committed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.app.tasks import FLAKY_POLICY

SCHEDULING_SLACK = 2.0
"""Seconds a retry may start after its countdown ran out (broker round trip, worker's ETA timer, a busy machine)."""


def test_a_thousand_messages_over_three_partitions_are_each_handled_and_committed(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    support.produce(topic, ((f"k{i}".encode(), f"v{i}".encode(), None) for i in range(1000)))

    bridges.append(support.start_bridge(ns, [topic], logs))

    handled_key = recorder.key("handled", ns)
    support.wait_until(lambda: recorder.client().hlen(handled_key) >= 1000, timeout=120, what="1,000 messages handled")
    handled = {k.decode(): int(v) for k, v in recorder.client().hgetall(handled_key).items()}
    partitions = {message_id.split("/")[1].split("@")[0] for message_id in handled}
    assert len(handled) == 1000 and partitions == {"0", "1", "2"}
    twice = {message_id: n for message_id, n in handled.items() if n != 1}
    assert twice == {}, f"{len(twice)} messages handled more than once without any failure, e.g. {list(twice.items())[:5]}"
    seen = {message_id: (base64.b64decode(f["key"]), base64.b64decode(f["value"])) for message_id, f in recorder.facts(ns).items()}
    assert seen == support.read_topic(topic), "each handler must get the key and value Kafka holds at its message's offset"
    assert sorted(seen.values()) == sorted((f"k{i}".encode(), f"v{i}".encode()) for i in range(1000))
    assert not FailedMessage.objects.filter(source_topic=topic).exists()
    ends = support.end_offsets(topic)
    assert sum(ends.values()) == 1000
    support.wait_until(lambda: support.committed_offsets(ns, topic) == ends, timeout=30, what="offsets committed to the end")


def test_a_handler_failing_twice_is_retried_twice_with_countdowns_inside_the_policy(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.flaky"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"k", b"payload", None)])
    bridges.append(support.start_bridge(ns, [topic], logs))

    message_id = f"{topic}/0@0"
    support.wait_until(lambda: recorder.client().hexists(recorder.key("handled", ns), message_id), timeout=60, what="the flaky message to succeed")

    attempts = [json.loads(a) for a in recorder.client().lrange(recorder.key(f"attempts:{message_id}", ns), 0, -1)]
    countdowns = [json.loads(c) for c in recorder.client().lrange(recorder.key(f"countdowns:{message_id}", ns), 0, -1)]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [c["attempt"] for c in countdowns] == [1, 2]
    for scheduled in countdowns:
        nominal = FLAKY_POLICY.base_delay * FLAKY_POLICY.multiplier ** (scheduled["attempt"] - 1)
        assert nominal * (1 - FLAKY_POLICY.jitter) <= scheduled["countdown"] <= nominal * (1 + FLAKY_POLICY.jitter)
    for before, after, scheduled in zip(attempts, attempts[1:], countdowns):
        assert after["at"] - before["at"] >= scheduled["countdown"] - 0.05, "a retry ran before its countdown"
        longest = min(FLAKY_POLICY.max_delay, FLAKY_POLICY.base_delay * FLAKY_POLICY.multiplier ** (scheduled["attempt"] - 1) * (1 + FLAKY_POLICY.jitter))
        assert after["at"] - before["at"] <= longest + SCHEDULING_SLACK, (
            f"retry {scheduled['attempt']} ran {after['at'] - before['at']:.2f}s after the failure; the policy allows {longest:.2f}s"
        )
    assert not FailedMessage.objects.filter(source_topic=topic).exists()
