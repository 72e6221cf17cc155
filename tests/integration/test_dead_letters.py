"""Messages that exhaust their retries, or whose handler gives up, end as exactly one dead-letter row."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from django.db import connection

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder


def attempts_of(ns: str, message_id: str) -> int:
    return recorder.client().llen(recorder.key(f"attempts:{message_id}", ns))


def test_an_always_failing_message_ends_as_one_dead_letter_after_max_attempts(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.always_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"order-1", b'{"id": 1}', [("origin", b"test")])])
    bridges.append(support.start_bridge(ns, [topic], logs))

    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")
    rows, runs, _ = support.settled(ns, topic)  # a late extra retry or a second save would change these

    assert FailedMessage.objects.filter(source_topic=topic).count() == 1
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(0, 3)] and runs == {f"{topic}/0@0": 3}
    assert (row.source_partition, row.source_offset) == (0, 0)
    assert row.attempts == 3 and attempts_of(ns, f"{topic}/0@0") == 3
    assert row.status == FailedMessage.Status.FAILED
    assert row.handler == "tests.app.tasks.always_fails"
    assert row.exception_class == "builtins.RuntimeError"
    assert "this handler always fails" in row.exception_message
    assert "Traceback (most recent call last)" in row.traceback and "RuntimeError" in row.traceback
    assert "retries exhausted after 3" in row.reason
    assert bytes(row.key) == b"order-1" and bytes(row.value) == b'{"id": 1}'
    assert row.to_message().headers == (("origin", b"test"),)
    assert row.first_failed_at <= row.last_failed_at


def test_give_up_and_give_up_on_dead_letter_at_once_without_retries(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.gives_up"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"a", b"give-up", None), (b"b", b"value-error", None)])
    bridges.append(support.start_bridge(ns, [topic], logs))

    support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).count() == 2, timeout=60, what="two dead letters")
    rows, runs, _ = support.settled(ns, topic)
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(0, 1), (1, 1)]
    assert runs == {f"{topic}/0@0": 1, f"{topic}/0@1": 1}
    gave_up = FailedMessage.objects.get(source_topic=topic, source_offset=0)
    value_error = FailedMessage.objects.get(source_topic=topic, source_offset=1)
    assert gave_up.reason == "gave up: the order was cancelled upstream" and gave_up.exception_class == "kafkabridge.errors.GiveUp"
    assert value_error.reason == "gave up on ValueError (give_up_on)"
    assert gave_up.attempts == value_error.attempts == 1
    assert attempts_of(ns, f"{topic}/0@0") == attempts_of(ns, f"{topic}/0@1") == 1


@pytest.mark.outage  # stops PostgreSQL: on a service set of its own (scripts/test's group "outage")
def test_a_dead_letter_waits_out_a_database_outage_and_is_stored_once_it_is_back(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.always_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    connection.close()
    with support.outage("postgres"):
        support.produce(topic, [(b"k", b"during the outage", None)])
        bridges.append(support.start_bridge(ns, [topic], logs))
        worker.wait_for_log(r"could not store the dead letter of .*stays queued", timeout=60)

    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=90, what="the dead letter after the outage")
    assert bytes(row.value) == b"during the outage"
    assert row.attempts == 3
    rows, runs, _ = support.settled(ns, topic)  # saving was retried; the handler was not run again
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(0, 3)] and runs == {f"{topic}/0@0": 3}


def test_a_handler_past_its_time_limit_is_retried_then_dead_lettered_not_dropped(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.too_slow"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b"k", b"slow", None)])
    bridges.append(support.start_bridge(ns, [topic], logs))

    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=90, what="the dead letter")
    assert row.exception_class == "billiard.exceptions.SoftTimeLimitExceeded"
    assert row.attempts == 2 and attempts_of(ns, f"{topic}/0@0") == 2
    rows, runs, _ = support.settled(ns, topic)
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(0, 2)] and runs == {f"{topic}/0@0": 2}
