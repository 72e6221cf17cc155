"""A rate-limit wait is not a failed attempt: a throttled handler whose downstream fails uses exactly
``max_attempts`` attempts, however many waits it had (item 6); and every wait is reported."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.worker.throttle import MAX_WAIT_IN_SLOT
from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.app.hooks import rate_limited, waits
from tests.ratelimit.app.tasks import FAILING_POLICY

MESSAGES = 3
RATE = 0.7
"""Tokens per second: the next token is up to 1.4 s away, so some waits are spent in the pool slot (up to 1 s)
and the others as Celery countdown retries (each a Celery retry that must not count as an attempt)."""


def attempt_times(ns: str, message_id: str) -> list[float]:
    return [json.loads(a)["at"] for a in recorder.client().lrange(recorder.key(f"attempts:{message_id}", ns), 0, -1)]


def test_a_throttled_handler_that_always_fails_uses_exactly_max_attempts_whatever_its_waits(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, database: None
) -> None:
    # Given a handler limited to 0.7 runs a second across workers, whose downstream always fails (3 attempts)
    topic = f"{ns}.throttled_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(throttle={"RATE": RATE, "BURST": 1})
    processes.extend(rig.start(ns, logs, env, topics=[topic]))

    # When three messages arrive at once (9 runs, one token each: about 13 s)
    support.produce(topic, ((f"k{i}".encode(), b"{}", None) for i in range(MESSAGES)))
    support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).count() == MESSAGES, timeout=60,
                       what="every message dead-lettered")
    rows, runs, _ = support.settled(ns, topic)

    # Then each was dead-lettered after exactly 3 attempts, numbered 1, 2, 3, and the runs kept to the limit
    every_run = sorted(at for offset in range(MESSAGES) for at in attempt_times(ns, f"{topic}/0@{offset}"))
    waited = [countdown for _, countdown, _ in rate_limited(ns)]
    countdown_waits = [wait for wait in waited if wait > MAX_WAIT_IN_SLOT]  # the others were spent in the pool slot
    print(f"\nruns at {[round(at - every_run[0], 1) for at in every_run]} s; {len(waited)} waits, "
          f"{len(countdown_waits)} of them Celery countdown retries; attempts per message: {sorted(runs.values())}")
    assert [(offset, attempts, status) for offset, attempts, status, _ in rows] == [
        (offset, FAILING_POLICY.max_attempts, FailedMessage.Status.FAILED) for offset in range(MESSAGES)
    ]
    for offset in range(MESSAGES):
        assert recorder.attempts(ns, f"{topic}/0@{offset}") == [1, 2, 3]
    assert every_run[-1] - every_run[0] >= (len(every_run) - 1 - 1) / RATE * 0.9, "the runs kept to the limit (burst 1)"
    assert countdown_waits, f"some waits must have been Celery retries (which must not count as attempts): {waited}"


def test_every_wait_for_a_token_is_reported_through_the_hooks(ns: str, kafka_admin: AdminClient, processes: list, logs: Path) -> None:
    # Given a handler limited to 5 runs a second (burst 1)
    topic = f"{ns}.throttled"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(throttle={"RATE": 5, "BURST": 1})
    processes.extend(rig.start(ns, logs, env, topics=[topic]))

    # When 15 messages arrive at once
    support.produce(topic, ((f"k{i}".encode(), b"{}", None) for i in range(15)))
    support.wait_until(lambda: len(recorder.handled_counts(ns)) == 15, timeout=30, what="every message handled")

    # Then the hooks heard of the waits: all but the first run had to wait for a token
    assert sum(waits(ns).values()) >= 15 - 1 - 2, f"waits reported: {waits(ns)}"
