"""A topic with a JSON Schema: mismatching messages are dead-lettered at once with the path, valid ones handled."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder

VALID = {"id": 1, "lines": [{"sku": "a", "qty": 1}]}
RECORDS = [  # (value, expected: "handled" or the dead letter's exact reason)
    (VALID, "handled"),
    ({"id": 2, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": -1}]}, "schema: $.lines[1].qty: -1 is less than the minimum of 1"),
    ({"lines": [{"sku": "a", "qty": 1}]}, "schema: $: 'id' is a required property"),
    ({"id": "3", "lines": [{"sku": "a", "qty": 1}]}, "schema: $.id: '3' is not of type 'integer'"),
    ({**VALID, "id": 4}, "handled"),
]


def test_schema_invalid_messages_are_dead_lettered_at_once_with_the_error_path_and_valid_ones_handled(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.validated"  # tests/settings.py gives it tests/app/schemas/order.json
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(str(i).encode(), json.dumps(value).encode(), None) for i, (value, _) in enumerate(RECORDS)], partition=0)
    bridges.append(support.start_bridge(ns, [topic], logs))

    dead = [offset for offset, (_, outcome) in enumerate(RECORDS) if outcome != "handled"]
    handled = [offset for offset, (_, outcome) in enumerate(RECORDS) if outcome == "handled"]
    support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic=topic).count() == len(dead) and len(recorder.handled_counts(ns)) == len(handled),
        timeout=60, what="every message's outcome",
    )
    rows, runs, handled_counts = support.settled(ns, topic)  # no late retry of a schema failure

    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(offset, 1) for offset in dead]
    assert runs == {f"{topic}/0@{offset}": 1 for offset in handled}  # the handler never ran on an invalid one
    assert handled_counts == {f"{topic}/0@{offset}": 1 for offset in handled}
    for offset in dead:
        row = FailedMessage.objects.get(source_topic=topic, source_offset=offset)
        assert row.reason == RECORDS[offset][1]
        assert row.exception_class == "kafkabridge.errors.SchemaError"
        assert json.loads(bytes(row.value)) == RECORDS[offset][0]
    assert not recorder.client().exists(*[recorder.key(f"countdowns:{topic}/0@{offset}", ns) for offset in dead])
