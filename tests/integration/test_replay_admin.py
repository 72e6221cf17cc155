"""Operators replay dead letters to their source topic from the Django admin: permission, claim, audit, real Kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType
from django.contrib.admin.models import LogEntry

from kafkabridge import ProduceError
from kafkabridge.contrib.django import services
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.observability.tracing import TRACE_HEADERS
from kafkabridge.replay import REPLAYED_BY_HEADER, REPLAYED_FROM_HEADER
from tests import support
from tests.integration.admin_support import CHANGELIST, admin_client, failed_row, post_action

HEADERS = [("origin", b"shop"), ("bin", b"\xff\x00"), ("origin", b"again"), ("empty", None)]


def records(topic: str) -> list[tuple[bytes | None, bytes | None, list]]:
    """Every record of partition 0 of ``topic``: (key, value, headers), the trace headers left out (the
    test process traces when another test of the session turned an SDK on)."""
    end = support.end_offsets(topic, partitions=1)[0]
    found: list[tuple[bytes | None, bytes | None, list]] = []
    consumer = Consumer({"bootstrap.servers": support.KAFKA, "group.id": "kbtest-replay-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        support.wait_until(lambda: _read(consumer, found) >= end, timeout=30, what=f"the {end} record(s) of {topic}")
    finally:
        consumer.close()
    return found


def _read(consumer: Consumer, found: list) -> int:
    for raw in consumer.consume(100, 0.5):
        if raw.error() is None:
            headers = [(name, value) for name, value in raw.headers() or [] if name not in TRACE_HEADERS]
            found.append((raw.key(), raw.value(), headers))
    return len(found)


@pytest.fixture
def dead_letter(ns: str, kafka_admin: AdminClient, database: None) -> FailedMessage:
    """A dead letter of ``<ns>.replayed`` (offset 0 of partition 0; the topic itself starts empty)."""
    topic = f"{ns}.replayed"
    support.create_topics(kafka_admin, [topic], partitions=1)
    return failed_row(topic, key=b"k-7", value=b'{"order": 7}', headers=HEADERS)


def test_a_replay_produces_the_record_again_with_its_key_value_and_headers_and_a_double_submit_replays_once(
    ns: str, dead_letter: FailedMessage, database: None
) -> None:
    operator, user = admin_client(f"{ns}-op", can_replay=True)
    assert "replay_selected" in operator.get(CHANGELIST).content.decode()

    post_action(operator, dead_letter, "replay_selected")
    post_action(operator, dead_letter, "replay_selected")  # the double submit

    [(key, value, headers)] = records(dead_letter.source_topic)
    assert (key, value) == (b"k-7", b'{"order": 7}')
    assert headers == [*HEADERS, (REPLAYED_FROM_HEADER, f"{dead_letter.source_topic}/0@0".encode()), (REPLAYED_BY_HEADER, user.username.encode())]
    assert FailedMessage.objects.get(pk=dead_letter.pk).status == FailedMessage.Status.REPLAYED
    [entry] = LogEntry.objects.filter(user=user, object_id=str(dead_letter.pk))
    assert entry.change_message == f"Replayed to {dead_letter.source_topic}/0@0"


def test_staff_without_the_replay_permission_cannot_replay(ns: str, dead_letter: FailedMessage, database: None) -> None:
    requeuer, _ = admin_client(f"{ns}-requeuer", can_requeue=True)  # requeue is another permission
    page = requeuer.get(CHANGELIST).content.decode()
    assert "requeue_selected" in page and "replay_selected" not in page

    post_action(requeuer, dead_letter, "replay_selected")
    viewer, _ = admin_client(f"{ns}-viewer")
    post_action(viewer, dead_letter, "replay_selected")

    assert support.end_offsets(dead_letter.source_topic, partitions=1) == {0: 0}
    assert FailedMessage.objects.get(pk=dead_letter.pk).status == FailedMessage.Status.FAILED
    assert not LogEntry.objects.filter(object_id=str(dead_letter.pk)).exists()


def test_a_produce_the_broker_refuses_gives_the_claim_back_and_a_later_replay_goes_through(
    ns: str, kafka_admin: AdminClient, database: None
) -> None:
    # Given a dead letter larger than its topic now accepts (the topic's max.message.bytes was lowered)
    topic = f"{ns}.small"
    for future in kafka_admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})]).values():
        future.result(30)
    support.wait_until(lambda: support.end_offsets(topic, partitions=1) == {0: 0}, timeout=30, what=f"{topic} to be ready")
    value = b"x" * 5000
    row = failed_row(topic, key=b"k", value=value)

    # When it is replayed, the broker refuses it: the row is failed again, with the error reported
    report = services.replay([row.pk], actor=None)
    assert not report.replayed and [r.pk for r, _ in report.errors] == [row.pk]
    assert isinstance(report.errors[0][1], ProduceError) and "too large" in str(report.errors[0][1]).lower()
    assert FailedMessage.objects.get(pk=row.pk).status == FailedMessage.Status.FAILED

    # Then, the limit raised again, the next replay claims it and puts it there
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "1000000", incremental_operation=AlterConfigOpType.SET)])
    for future in kafka_admin.incremental_alter_configs([resource]).values():
        future.result(30)
    support.wait_until(lambda: services.replay([row.pk], actor=None).replayed, timeout=30,
                                what="a replay the broker accepts")
    assert records(topic) == [(b"k", value, [(REPLAYED_FROM_HEADER, f"{topic}/0@0".encode()), (REPLAYED_BY_HEADER, b"system")])]
    assert FailedMessage.objects.get(pk=row.pk).status == FailedMessage.Status.REPLAYED
