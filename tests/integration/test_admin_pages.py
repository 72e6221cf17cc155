"""The admin pages of dead letters render whatever the stored bytes are, and never let them run as markup."""

from __future__ import annotations

import re
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.integration.admin_support import CHANGELIST, admin_client, change_page, failed_row

DEEP_JSON = b"[" * 5000 + b"]" * 5000  # valid JSON, nested deeper than Python's parser goes
DEEPER_THAN_SHOWN = b"[" * 50000 + b"]" * 50000


def test_the_change_page_of_deeply_nested_json_in_value_key_and_headers_answers_200(ns: str, database: None) -> None:
    row = failed_row(f"{ns}.deep", key=DEEPER_THAN_SHOWN, value=DEEP_JSON,
                     headers=[("deep", DEEP_JSON), ("surrogate", b'"\\ud800"'), ("fine", b'{"a": 1}')])
    viewer, _ = admin_client(f"{ns}-viewer")

    page = viewer.get(change_page(row))

    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("text · 10000 bytes") == 2  # the value and the header, as the text they are
    assert "text · 100000 bytes" in body and "text · 8 bytes" in body and "json · 8 bytes" in body


def test_script_planted_in_key_value_headers_and_the_exception_stays_escaped(
    ns: str, kafka_admin: AdminClient, worker: support.ServiceProcess, bridges: list, logs: Path, database: None
) -> None:
    # Given a record whose every part carries markup, failing in a handler whose error repeats its value
    topic = f"{ns}.always_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    support.produce(topic, [(b'<script>alert("key")</script>', b'<script>alert("value")</script>',
                             [('<script>alert("name")</script>', b'<script>alert("header")</script>')])])
    bridges.append(support.start_bridge(ns, [topic], logs))
    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")
    assert '<script>alert("value")</script>' in row.exception_message and '<script>alert("value")</script>' in row.traceback

    # When an operator opens its pages
    viewer, _ = admin_client(f"{ns}-viewer")
    detail = viewer.get(change_page(row))
    listing = viewer.get(CHANGELIST, {"q": "alert"})

    # Then every planted tag is shown as text, none is markup
    assert detail.status_code == listing.status_code == 200
    body = detail.content.decode()
    assert not re.search(r"<script>alert", body + listing.content.decode())
    for part in ("key", "value", "name", "header"):
        assert f"&lt;script&gt;alert(&quot;{part}&quot;)&lt;/script&gt;" in body, part
    # the value, the exception message, the traceback, and each attempt's message in the attempt history
    assert body.count("&lt;script&gt;alert(&quot;value&quot;)") == 3 + len(row.history)
