"""JSON Schemas of topics: compiled once, mismatches named by their path, bad schemas refused at start-up."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kafkabridge import BridgeSettings, ConfigurationError, GiveUp, Message, Producer, SchemaError
from kafkabridge.hooks import HookDispatcher
from kafkabridge.schema import Schema, check_message, schema_for

ORDER = json.loads((Path(__file__).parent.parent / "app" / "schemas" / "order.json").read_text())


def test_a_document_that_matches_passes() -> None:
    Schema(ORDER).check({"id": 1, "lines": [{"sku": "a", "qty": 2}]})


@pytest.mark.parametrize(("document", "path", "problem"), [
    ({"id": 1, "lines": [{"sku": "a", "qty": -1}]}, "$.lines[0].qty", "-1 is less than the minimum of 1"),
    ({"id": 1, "lines": [{"sku": "a", "qty": 1}, {"sku": 2, "qty": 1}]}, "$.lines[1].sku", "2 is not of type 'string'"),
    ({"lines": [{"sku": "a", "qty": 1}]}, "$", "'id' is a required property"),
    ([1, 2], "$", "[1, 2] is not of type 'object'"),
])
def test_a_mismatch_names_where_it_is_and_what_is_wrong(document: object, path: str, problem: str) -> None:
    with pytest.raises(SchemaError) as raised:
        Schema(ORDER).check(document)
    assert (raised.value.path, raised.value.problem) == (path, problem)
    assert raised.value.reason == f"schema: {path}: {problem}"
    assert isinstance(raised.value, GiveUp)  # never retried


def test_a_value_that_is_not_json_does_not_match() -> None:
    with pytest.raises(SchemaError, match=r"^schema: \$: value is not valid JSON"):
        Schema(ORDER).check_value(b"{not json")
    with pytest.raises(SchemaError, match=r"no value \(null\)"):
        Schema(ORDER).check_value(None)


def test_the_schema_names_its_draft_and_2020_12_is_the_default() -> None:
    draft7 = Schema({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "integer"}]})
    with pytest.raises(SchemaError, match=r"\$\[0\]"):
        draft7.check(["a"])  # draft 7 tuple items; in 2020-12 "items" must be a schema, not a list
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        Schema({"items": [{"type": "integer"}]})


def test_each_declared_schema_is_compiled_once(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER))
    settings = BridgeSettings(schemas={"orders": str(path), "refunds": {"type": "object"}})
    assert schema_for(settings.schemas, "orders") is schema_for(settings.schemas, "orders") is Schema.load(path)
    assert schema_for(settings.schemas, "refunds") is schema_for(settings.schemas, "refunds")
    assert schema_for(settings.schemas, "other") is None


@pytest.mark.parametrize(("declared", "error"), [
    ({"type": "objekt"}, r"not a valid JSON Schema: \$\.type"),
    ("/nonexistent/order.json", "cannot read the JSON Schema '/nonexistent/order.json'"),
    (["not", "a", "schema"], "a schema is a JSON object"),
])
def test_a_bad_schema_or_a_missing_file_is_refused_when_the_settings_are_built(declared: object, error: str) -> None:
    with pytest.raises(ConfigurationError, match=error):
        BridgeSettings.from_mapping({"SCHEMAS": {"orders": declared}}, environ={})


def test_a_message_is_checked_against_its_topics_schema_only() -> None:
    settings = BridgeSettings(schemas={"orders": ORDER})
    check_message(settings.schemas, Message("orders", 0, 0, value=b'{"id": 1, "lines": [{"sku": "a", "qty": 1}]}'))
    check_message(settings.schemas, Message("other", 0, 0, value=b"anything"))
    with pytest.raises(SchemaError, match=r"\$\.lines: \[\] should be non-empty"):
        check_message(settings.schemas, Message("orders", 0, 0, value=b'{"id": 1, "lines": []}'))


def test_the_producer_refuses_a_value_that_does_not_match_before_sending() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = BridgeSettings(bootstrap_servers=f"127.0.0.1:{port}", schemas={"orders": ORDER})
    producer = Producer(settings=settings, hooks=HookDispatcher())
    try:
        with pytest.raises(SchemaError, match=r"^schema: \$\.lines\[0\]\.qty: 0 is less than the minimum of 1$"):
            producer.send("orders", {"id": 1, "lines": [{"sku": "a", "qty": 0}]})
        with pytest.raises(SchemaError):
            producer.send("orders", b"not json")
        assert len(producer) == 0  # nothing was queued
        producer.send("unchecked", {"anything": True})  # no schema: queued (and purged at close)
        assert len(producer) == 1
    finally:
        producer.close(timeout=0)
