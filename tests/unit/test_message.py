import json

import pytest

from kafkabridge import Message, PoisonMessage


def message_with(value: bytes | None) -> Message:
    return Message(topic="t", partition=0, offset=0, value=value)


def test_json_of_invalid_utf8_is_poison_with_the_raw_bytes() -> None:
    with pytest.raises(PoisonMessage) as caught:
        message_with(b"\xff{}").json()
    assert caught.value.raw == b"\xff{}"
    assert "not valid utf-8" in caught.value.reason


@pytest.mark.parametrize("value", [b"", b"{not json", b"[1,"])
def test_invalid_json_is_poison(value: bytes) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        message_with(value).json()


def test_a_null_value_is_poison_for_json() -> None:
    with pytest.raises(PoisonMessage, match="no value"):
        message_with(None).json()


def test_json_nested_too_deeply_to_parse_is_poison_not_a_retryable_error() -> None:
    value = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PoisonMessage, match="nested too deeply") as caught:
        message_with(value).json()
    assert caught.value.raw == value


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json_and_are_poison(constant: bytes) -> None:
    with pytest.raises(PoisonMessage, match=f"{constant.decode()} is not JSON"):
        message_with(b'{"price": [1, ' + constant + b"]}").json()


def test_a_number_too_large_for_a_float_is_poison_because_it_would_be_written_back_as_infinity() -> None:
    with pytest.raises(PoisonMessage, match="too large"):
        message_with(b'{"price": 1e999}').json()


def test_an_integer_longer_than_python_converts_is_poison() -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        message_with(b"1" * 5_000).json()


def test_allow_nan_accepts_the_non_standard_constants_on_request() -> None:
    document = message_with(b"[NaN, Infinity, -Infinity, 1e999]").json(allow_nan=True)
    assert json.dumps(document) == "[NaN, Infinity, -Infinity, Infinity]"


def test_ordinary_json_still_parses_with_its_floats() -> None:
    assert message_with(b'{"a": [1, 2.5, -0.0, 1e308, null, "x"]}').json() == {"a": [1, 2.5, -0.0, 1e308, None, "x"]}


def test_header_returns_the_last_of_repeated_keys() -> None:
    message = Message(topic="t", partition=0, offset=0, headers=(("a", b"1"), ("a", b"2")))
    assert message.header("a") == b"2"
    assert message.header("missing") is None
