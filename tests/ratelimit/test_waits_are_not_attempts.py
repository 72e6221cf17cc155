"""A rate-limit wait is not a failed attempt: a throttled handler whose downstream fails uses exactly
``max_attempts`` attempts, however many waits it had (item 6)."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.app.hooks import waits
from tests.ratelimit.app.tasks import FAILING_POLICY

MESSAGES = 6


def test_a_throttled_handler_that_always_fails_uses_exactly_max_attempts_whatever_its_waits(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, database: None
) -> None:
    # Given a handler limited to 4 runs a second across workers, whose downstream always fails (3 attempts)
    topic = f"{ns}.throttled_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(throttle={"RATE": 4, "BURST": 1})
    processes.extend(rig.start(ns, logs, env, topics=[topic]))

    # When six messages arrive at once (18 runs at 4/s: most runs wait for their token first)
    support.produce(topic, ((f"k{i}".encode(), b"{}", None) for i in range(MESSAGES)))
    support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).count() == MESSAGES, timeout=60,
                       what="every message dead-lettered")
    rows, runs, _ = support.settled(ns, topic)

    # Then each was dead-lettered after exactly 3 attempts, numbered 1, 2, 3, and most of them had waited for tokens
    waited = waits(ns)
    print(f"\nrate-limit waits per message: {sorted(waited.values())}; attempts per message: {sorted(runs.values())}")
    assert [(offset, attempts, status) for offset, attempts, status, _ in rows] == [
        (offset, FAILING_POLICY.max_attempts, FailedMessage.Status.FAILED) for offset in range(MESSAGES)
    ]
    for offset in range(MESSAGES):
        assert recorder.attempts(ns, f"{topic}/0@{offset}") == [1, 2, 3]
    assert sum(waited.values()) >= MESSAGES, f"the limit must have made the runs wait: {waited}"
    assert max(waited.values()) >= 2, "some message waited more often than it failed"
