"""Handlers used by the integration tests; their topics live under the test's namespace (KBTEST_NS)."""

from __future__ import annotations

from kafkabridge import GiveUp, Message, Producer, RetryPolicy, kafka_handler

from . import recorder
from .recorder import topic

FLAKY_POLICY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=4.0, jitter=0.2)
REQUEUE_RETRY_POLICY = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5)


@kafka_handler(topic("record"), retry=RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0))
def record(message: Message) -> None:
    recorder.record_handled(message, key=recorder.b64(message.key), value=recorder.b64(message.value))


@kafka_handler(topic("flaky"), retry=FLAKY_POLICY)
def fails_twice_then_succeeds(message: Message) -> None:
    recorder.record_attempt(message)
    if message.attempt <= 2:
        raise ConnectionError(f"downstream unavailable (attempt {message.attempt})")
    recorder.record_handled(message)


@kafka_handler(topic("always_fails"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5))
def always_fails(message: Message) -> None:
    recorder.record_attempt(message)
    raise RuntimeError(f"this handler always fails (value={message.value!r})")


@kafka_handler(topic("gives_up"), retry=RetryPolicy(max_attempts=5, base_delay=0.1, give_up_on=(ValueError,)))
def gives_up(message: Message) -> None:
    recorder.record_attempt(message)
    if message.value == b"give-up":
        raise GiveUp("the order was cancelled upstream")
    raise ValueError("the order has no lines")


@kafka_handler(topic("poison"), retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.2))
def parses_json(message: Message) -> None:
    recorder.record_attempt(message)
    document = message.json()
    recorder.record_handled(
        message,
        key=recorder.b64(message.key),
        value_length=len(message.value or b""),
        value=recorder.b64(message.value),
        headers=[[name, recorder.b64(value)] for name, value in message.headers],
        document_type=type(document).__name__,
    )


@kafka_handler(topic("requeue"), retry=RetryPolicy(max_attempts=1))
def fails_until_healed(message: Message) -> None:
    recorder.record_attempt(message)
    if not recorder.client().exists(recorder.key("healed")):
        raise ConnectionError("the downstream service is still down")
    recorder.record_handled(message)


@kafka_handler(topic("requeue_retries"), retry=REQUEUE_RETRY_POLICY)
def succeeds_on_its_last_attempt_once_healed(message: Message) -> None:
    """Needs every attempt of its policy: it fails on all but the last, and on the last too until healed."""
    recorder.record_attempt(message)
    if message.attempt < REQUEUE_RETRY_POLICY.max_attempts or not recorder.client().exists(recorder.key("healed")):
        raise ConnectionError(f"the downstream service is still down (attempt {message.attempt})")
    recorder.record_handled(message)


@kafka_handler(topic("too_slow"), retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.2), time_limit=2.0)
def too_slow(message: Message) -> None:
    recorder.record_attempt(message)
    import time

    time.sleep(10)  # past the soft limit (1 s): SoftTimeLimitExceeded is raised in here


@kafka_handler(topic("validated"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5))
def handles_valid_orders(message: Message) -> None:
    """Its topic has a JSON Schema (tests/settings.py SCHEMAS): only orders that match it get here."""
    recorder.record_attempt(message)
    recorder.record_handled(message, id=message.json()["id"])


_producer: Producer | None = None


def forwarder() -> Producer:
    """One Producer per worker process, made at its first use (after the fork)."""
    global _producer
    if _producer is None:
        _producer = Producer()
    return _producer


@kafka_handler(topic("forwards"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5))
def forwards(message: Message) -> None:
    """Sends each message on to topic("forwarded") with kafkabridge's Producer and waits for Kafka's answer."""
    forwarder().send(topic("forwarded"), message.value, key=message.key).result(timeout=30)
    recorder.record_handled(message)


@kafka_handler(topic("held"), retry=RetryPolicy(max_attempts=1))
def waits_for_release(message: Message) -> None:
    """Returns once the test sets the key ``released`` (or after 60 s, so that a failed test does not hang)."""
    import time

    deadline = time.monotonic() + 60
    while not recorder.client().exists(recorder.key("released")) and time.monotonic() < deadline:
        time.sleep(0.05)
    recorder.record_handled(message)


@kafka_handler(topic("sends"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.5))
def sends_without_waiting(message: Message) -> None:
    """Sends each message on to topic("sent") and returns without waiting: the pool process's exit delivers it."""
    forwarder().send(topic("sent"), message.value, key=message.key)
    recorder.record_handled(message)
