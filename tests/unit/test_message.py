import json
from datetime import datetime, timezone

import pytest

from kafkabridge import Message, PoisonMessage


def test_envelopes_carry_binary_keys_values_and_duplicate_headers_losslessly() -> None:
    message = Message(
        topic="t", partition=2, offset=99, key=b"\x00\xff", value=b"\xc3\x28 not utf-8",
        headers=(("trace", b"\x01\x02"), ("trace", b"second"), ("empty", None)),
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
    )
    envelope = json.loads(json.dumps(message.to_envelope()))  # what Celery's JSON serializer does
    assert Message.from_envelope(envelope) == message


def test_null_key_and_value_survive_the_envelope() -> None:
    message = Message(topic="t", partition=0, offset=0)
    assert Message.from_envelope(message.to_envelope()) == message


def test_json_of_invalid_utf8_is_poison_with_the_raw_bytes() -> None:
    with pytest.raises(PoisonMessage) as caught:
        Message(topic="t", partition=0, offset=0, value=b"\xff{}").json()
    assert caught.value.raw == b"\xff{}"
    assert "not valid utf-8" in caught.value.reason


@pytest.mark.parametrize("value", [b"", b"{not json", b"[1,"])
def test_invalid_json_is_poison(value: bytes) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        Message(topic="t", partition=0, offset=0, value=value).json()


def test_a_null_value_is_poison_for_json() -> None:
    with pytest.raises(PoisonMessage, match="no value"):
        Message(topic="t", partition=0, offset=0, value=None).json()


def test_header_returns_the_last_of_repeated_keys() -> None:
    message = Message(topic="t", partition=0, offset=0, headers=(("a", b"1"), ("a", b"2")))
    assert message.header("a") == b"2"
    assert message.header("missing") is None


def test_unknown_envelope_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="envelope version"):
        Message.from_envelope({"v": 99, "topic": "t", "partition": 0, "offset": 0})
