"""Handlers of the rate-limit tests; their topics and task names live under the test's namespace (KBTEST_NS),
so that every bucket (``handler|<task name>``, ``partition|<group>|<topic>|<partition>``) is the test's own."""

from __future__ import annotations

import json
import os

from kafkabridge import Limit, Message, RetryPolicy, kafka_handler
from tests.app import recorder
from tests.app.recorder import namespace, topic

NON_BINDING = Limit(rate=1_000_000.0, burst=1_000_000.0)
FAILING_POLICY = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=0.5, jitter=0.2)


def throttle() -> Limit:
    """The throttled handlers' limit: ``KBTEST_THROTTLE`` (``{"RATE": .., "BURST": ..}``), else one that never binds."""
    options = os.environ.get("KBTEST_THROTTLE")
    return Limit.from_mapping(json.loads(options)) if options else NON_BINDING


def task_name(handler: str, ns: str | None = None) -> str:
    """The Celery task name of ``handler`` in the test namespace ``ns`` (default: this process's)."""
    return f"{ns or namespace()}.{handler}"


@kafka_handler(topic("timed"), name=task_name("timed"))
def timed(message: Message) -> None:
    """No limit of its own (the bridge's intake limit, if any, holds it back); records its Kafka timestamp."""
    recorder.record_started(message)
    recorder.record_handled(message, created=message.timestamp.timestamp() if message.timestamp else None)


@kafka_handler(topic("throttled"), name=task_name("throttled"), throttle=throttle())
def throttled(message: Message) -> None:
    recorder.record_started(message)
    recorder.record_handled(message)


@kafka_handler(topic("throttled_fails"), name=task_name("throttled_fails"), retry=FAILING_POLICY, throttle=throttle())
def throttled_always_fails(message: Message) -> None:
    """Its downstream is down for good: every attempt fails, and each had to wait for a token first."""
    recorder.record_attempt(message)
    raise ConnectionError(f"downstream unavailable (attempt {message.attempt})")


@kafka_handler(topic("noop"), name=task_name("noop"))
def noop(message: Message) -> None:
    """The benchmark's handler path without a limit (bench/ratelimit.py)."""


@kafka_handler(topic("throttled_noop"), name=task_name("throttled_noop"), throttle=throttle())
def throttled_noop(message: Message) -> None:
    """The same with a handler limit (non-binding unless KBTEST_THROTTLE says otherwise)."""
