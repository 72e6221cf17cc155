"""Poison input never crashes the bridge or a worker; each record is handled or dead-lettered, raw bytes kept."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder

ONE_MEGABYTE_JSON = json.dumps({"blob": "x" * (1024 * 1024)}).encode()

# (key, value, headers, expected outcome: "handled" or the text the dead letter's reason must contain)
RECORDS = [
    (b"bad-utf8", b"\xff\xfe\xfd", None, "not valid utf-8"),
    (b"bad-json", b'{"unterminated": ', None, "not valid JSON"),
    (b"empty", b"", None, "not valid JSON"),
    (b"null-value", None, None, "no value (null)"),
    (None, b'{"null": "key"}', None, "handled"),
    (b"big", ONE_MEGABYTE_JSON, None, "handled"),
    (b"headers", b"[1, 2]", [("bin", b"\x00\xff\x80"), ("dup", b"one"), ("dup", b"two"), ("none", None)], "handled"),
    (b"after-the-poison", b'"still running"', None, "handled"),
]


def test_poison_records_are_dead_lettered_with_a_reason_and_the_rest_handled_byte_for_byte(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    topic = f"{ns}.poison"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(key, value, headers) for key, value, headers, _ in RECORDS], partition=0)
    bridge = support.start_bridge(ns, [topic], logs)
    bridges.append(bridge)

    expected_dead = sum(1 for *_, outcome in RECORDS if outcome != "handled")
    expected_handled = len(RECORDS) - expected_dead
    handled_key = recorder.key("handled", ns)
    support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic=topic).count() == expected_dead
        and recorder.client().hlen(handled_key) == expected_handled,
        timeout=90, what="every poison record to have an outcome",
    )
    rows, runs, handled = support.settled(ns, topic)  # poison is not retried late, nothing handled twice
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(o, 1) for o, r in enumerate(RECORDS) if r[3] != "handled"]
    assert runs == {f"{topic}/0@{o}": 1 for o in range(len(RECORDS))}
    assert handled == {f"{topic}/0@{o}": 1 for o, r in enumerate(RECORDS) if r[3] == "handled"}

    facts = {k.decode(): json.loads(v) for k, v in recorder.client().hgetall(recorder.key("facts", ns)).items()}
    for offset, (key, value, headers, outcome) in enumerate(RECORDS):
        message_id = f"{topic}/0@{offset}"
        if outcome == "handled":
            seen = facts[message_id]
            assert seen["key"] == (None if key is None else base64.b64encode(key).decode())
            assert seen["value_length"] == len(value)
            assert base64.b64decode(seen["value"]) == value, f"the handler got other bytes than were produced at offset {offset}"
            assert seen["headers"] == [[n, None if v is None else base64.b64encode(v).decode()] for n, v in headers or []]
        else:
            row = FailedMessage.objects.get(source_topic=topic, source_offset=offset)
            assert outcome in row.reason, (key, row.reason)
            assert row.attempts == 1, "poison must not be retried"
            assert row.value is None if value is None else bytes(row.value) == value
            assert bytes(row.key) == key
            assert row.exception_class == "kafkabridge.errors.PoisonMessage"

    assert bridge.alive() and worker.alive()
    assert "Traceback" not in bridge.log()


def test_a_record_whose_headers_cannot_be_read_is_dead_lettered_without_running_the_handler(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    # Given a record with a header name that is not UTF-8 (the client cannot decode it), then a plain record
    topic = f"{ns}.poison"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce_with_kcat(topic, 0, b"unreadable", b'{"would": "parse"}', [(b"\xff\xfename", b"x"), (b"fine", b"y")])
    support.produce(topic, [(b"after", b'{"still": "handled"}', None)], partition=0)

    # When the bridge and the worker take them
    bridge = support.start_bridge(ns, [topic], logs)
    bridges.append(bridge)
    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic, source_offset=0).first(), timeout=60,
                             what="the dead letter of the unreadable record")
    support.wait_until(lambda: recorder.client().hexists(recorder.key("handled", ns), f"{topic}/0@1"), timeout=60,
                       what="the next record to be handled")

    # Then the first is dead-lettered at once with the reason and its bytes, its handler never ran, and the next one is handled
    rows, runs, handled = support.settled(ns, topic)
    assert [(offset, attempts) for offset, attempts, *_ in rows] == [(0, 1)]
    assert runs == {f"{topic}/0@1": 1} and handled == {f"{topic}/0@1": 1}
    assert "headers could not be read" in row.reason
    assert (bytes(row.key), bytes(row.value)) == (b"unreadable", b'{"would": "parse"}')
    assert bridge.alive() and worker.alive()
