import json
import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from kafkabridge import DeadLetterRecord, Message, MessageId, wire
from kafkabridge.dead_letter.record import HISTORY_HEAD, HISTORY_TAIL, MAX_ATTEMPT_MESSAGE_CHARS, Attempt, with_attempt
from kafkabridge.wire import (
    DELIVERY_KWARG,
    FIRST_DELIVERY,
    LEGACY_REQUEUE_ID,
    Delivery,
    Step,
    decode_dead_letter,
    decode_envelope,
    decode_headers,
    encode_dead_letter,
    encode_envelope,
    encode_headers,
    new_requeue_id,
    task_id,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
LATER = datetime(2026, 1, 2, 3, 4, 9, tzinfo=timezone.utc)

ODD_MESSAGE = Message(
    topic="orders", partition=2, offset=99, key=b"\x00\xff", value=b"\xc3\x28 not utf-8",
    headers=(("trace", b"\x01\x02"), ("trace", b"second"), ("empty", None), ("blank", b"")),
    timestamp=WHEN,
)

# What the previous version (one envelope v1, five kb_* kwargs) wrote, spelled out so that a change
# of the current writer cannot change what these tests read.
V1_ENVELOPE = {
    "v": 1, "topic": "orders", "partition": 0, "offset": 5, "key": "AP8=", "value": "eyJhIjogMX0=",
    "headers": [["h", "AA=="], ["h", None]], "timestamp_ms": 1767323045678, "problem": None,
}
V1_RECORD = {
    "message": {**V1_ENVELOPE, "attempt": 3},
    "handler": "app.tasks.handle_order", "reason": "retries exhausted after 3 attempt(s)",
    "exception_class": "builtins.RuntimeError", "exception_message": "boom", "traceback": "Traceback ...",
    "attempts": 3, "first_failed_at": "2026-01-02T03:04:05.678000+00:00", "last_failed_at": "2026-01-02T03:04:09+00:00",
}


def through_json(data: Any) -> Any:
    """What Celery's JSON serializer does to task arguments."""
    return json.loads(json.dumps(data, allow_nan=False))


def attempt(number: int, text: str = "boom") -> Attempt:
    return Attempt(number=number, started_at=1767323045.678 + number, seconds=0.25, host="celery@worker-1",
                   exception_class="builtins.RuntimeError", exception_message=text)


def record_of(message: Message) -> DeadLetterRecord:
    return DeadLetterRecord.from_error(
        message, handler="app.tasks.handle_order", reason="boom", error=RuntimeError("boom"),
        first_failed_at=WHEN, last_failed_at=LATER,
    )


# -- envelope and headers ---------------------------------------------------------------------------


def test_an_envelope_carries_binary_keys_values_and_repeated_or_null_headers_losslessly() -> None:
    assert decode_envelope(through_json(encode_envelope(ODD_MESSAGE))) == ODD_MESSAGE


def test_a_null_key_value_and_timestamp_survive_the_envelope() -> None:
    message = Message(topic="t", partition=0, offset=0)
    assert decode_envelope(through_json(encode_envelope(message))) == message


def test_an_envelope_keeps_why_the_bridge_could_not_read_a_record() -> None:
    message = Message(topic="t", partition=0, offset=0, problem="headers could not be read")
    assert decode_envelope(encode_envelope(message)).problem == "headers could not be read"


def test_the_attempt_comes_from_the_reader_not_from_the_envelope() -> None:
    envelope = encode_envelope(Message(topic="t", partition=0, offset=0, attempt=4))
    assert decode_envelope(envelope).attempt == 1 and decode_envelope(envelope, attempt=3).attempt == 3


def test_an_envelope_written_by_the_previous_version_is_read() -> None:
    message = decode_envelope(V1_ENVELOPE)
    assert message == Message(
        topic="orders", partition=0, offset=5, key=b"\x00\xff", value=b'{"a": 1}',
        headers=(("h", b"\x00"), ("h", None)), timestamp=WHEN,
    )


def test_unknown_envelope_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="envelope version"):
        decode_envelope({"v": 99, "topic": "t", "partition": 0, "offset": 0})


def test_headers_are_name_and_base64_pairs_in_order_with_null_kept() -> None:
    encoded = encode_headers(ODD_MESSAGE.headers)
    assert encoded == [["trace", "AQI="], ["trace", "c2Vjb25k"], ["empty", None], ["blank", ""]]
    assert decode_headers(through_json(encoded)) == ODD_MESSAGE.headers
    assert decode_headers(None) == decode_headers([]) == ()


# -- task ids ---------------------------------------------------------------------------------------


def test_a_first_delivery_is_named_by_its_record() -> None:
    assert task_id(MessageId("orders", 2, 9)) == "orders/2@9"


def test_a_requeue_is_named_by_its_record_and_a_fresh_requeue_id() -> None:
    first, second = new_requeue_id(), new_requeue_id()
    assert re.fullmatch(r"[0-9a-f]{12}", first) and first != second
    assert task_id(MessageId("orders", 2, 9), first) == f"orders/2@9:requeue:{first}"


# -- delivery state ---------------------------------------------------------------------------------


def test_a_first_delivery_carries_no_kwargs_and_no_kwargs_read_as_a_first_delivery() -> None:
    assert FIRST_DELIVERY.to_kwargs() == {}
    assert Delivery.from_kwargs({}) == FIRST_DELIVERY
    assert FIRST_DELIVERY.step is Step.HANDLE and not FIRST_DELIVERY.requeued


def test_every_other_delivery_state_travels_under_the_one_kb_kwarg() -> None:
    kwargs = Delivery(requeue_id="abc").to_kwargs()
    assert list(kwargs) == [DELIVERY_KWARG] == ["kb"]
    assert kwargs["kb"] == {"v": 1, "requeue_id": "abc"}  # fields at their default are left out


def test_a_delivery_state_with_every_field_set_survives_json() -> None:
    delivery = Delivery(
        step=Step.STORE, first_failed_at=WHEN, requeue_id="0123456789ab", store_attempts=4,
        dead_letter=record_of(ODD_MESSAGE),
    )
    assert Delivery.from_kwargs(through_json(delivery.to_kwargs())) == delivery


def test_a_pending_resolve_survives_json() -> None:
    delivery = Delivery(requeue_id="0123456789ab").resolving().store_failed()
    back = Delivery.from_kwargs(through_json(delivery.to_kwargs()))
    assert back == delivery and back.step is Step.RESOLVE and back.store_attempts == 1


def test_fields_from_a_newer_version_are_ignored_and_missing_ones_defaulted() -> None:
    newer = {"v": 7, "step": "handle", "requeue_id": "abc", "rate_limit_waits": 3, "ordering_key": {"id": "x"}}
    assert Delivery.from_kwargs({"kb": newer}) == Delivery(requeue_id="abc")
    assert Delivery.from_kwargs({"kb": {"v": 1}}) == FIRST_DELIVERY


def test_a_store_step_without_its_record_is_refused_and_so_is_a_record_outside_it() -> None:
    with pytest.raises(ValueError, match="store"):
        Delivery(step=Step.STORE)
    with pytest.raises(ValueError, match="handle"):
        Delivery(dead_letter=record_of(ODD_MESSAGE))


def test_the_first_failure_time_is_kept_across_failures() -> None:
    assert Delivery().failed(WHEN).failed(LATER).first_failed_at == WHEN


def test_a_requeue_is_a_requeue_through_every_step() -> None:
    delivery = Delivery(requeue_id="abc").failed(WHEN).storing(record_of(ODD_MESSAGE)).store_failed()
    assert delivery.requeued and delivery.requeue_id == "abc" and delivery.step is Step.STORE


def test_a_dead_letter_record_survives_json_with_its_message_attempt() -> None:
    record = record_of(Message(topic="t", partition=1, offset=2, value=b"\xff", attempt=3))
    back = decode_dead_letter(through_json(encode_dead_letter(record)))
    assert back == record and back.message.attempt == back.attempts == 3


def test_a_dead_letter_record_written_by_the_previous_version_is_read() -> None:
    record = decode_dead_letter(V1_RECORD)
    assert record.message.value == b'{"a": 1}' and record.message.attempt == record.attempts == 3
    assert (record.first_failed_at, record.last_failed_at) == (WHEN, LATER)
    assert encode_dead_letter(record) == V1_RECORD  # and is written back the same way


# -- attempt history --------------------------------------------------------------------------------


def test_each_failure_adds_its_attempt_to_the_history_oldest_first() -> None:
    delivery = Delivery().failed(WHEN, attempt(1)).failed(LATER, attempt(2))
    assert [a.number for a in delivery.history] == [1, 2] and delivery.first_failed_at == WHEN


def test_the_history_travels_as_compact_arrays_and_survives_json() -> None:
    delivery = Delivery(first_failed_at=WHEN, history=(attempt(1), attempt(2, "second")))
    kwargs = through_json(delivery.to_kwargs())
    assert kwargs["kb"]["history"][0] == [1, 1767323046.678, 0.25, "celery@worker-1", "builtins.RuntimeError", "boom"]
    assert Delivery.from_kwargs(kwargs) == delivery


def test_a_long_history_keeps_its_first_five_and_last_twenty_attempts() -> None:
    history: tuple[Attempt, ...] = ()
    for number in range(1, 101):
        history = with_attempt(history, attempt(number))
    assert (HISTORY_HEAD, HISTORY_TAIL) == (5, 20)
    assert [a.number for a in history] == [1, 2, 3, 4, 5, *range(81, 101)]


def test_an_attempt_records_the_error_class_and_a_cut_message() -> None:
    made = Attempt.of(ValueError("x" * 5000), number=3, started_at=1.0, seconds=2.0, host="h")
    assert made.exception_class == "builtins.ValueError" and made.number == 3
    assert len(made.exception_message) == MAX_ATTEMPT_MESSAGE_CHARS and made.exception_message.startswith("xxx")


def test_a_dead_letter_record_carries_its_history_through_json() -> None:
    record = replace(record_of(ODD_MESSAGE), history=(attempt(1), attempt(2)))
    assert decode_dead_letter(through_json(encode_dead_letter(record))) == record


def test_a_pending_dead_letter_carries_the_history_once_in_its_record() -> None:
    failed = Delivery().failed(WHEN, attempt(1))
    pending = failed.storing(replace(record_of(ODD_MESSAGE), history=failed.history))
    kwargs = through_json(pending.to_kwargs())
    assert "history" not in kwargs["kb"] and len(kwargs["kb"]["dead_letter"]["history"]) == 1


def test_states_and_records_without_a_history_read_as_an_empty_one() -> None:
    assert Delivery.from_kwargs({"kb": {"v": 1, "first_failed_at": WHEN.isoformat()}}).history == ()
    assert decode_dead_letter(V1_RECORD).history == ()


def test_attempt_fields_added_by_a_newer_version_are_ignored() -> None:
    newer = {"v": 1, "history": [[1, 1.5, 0.25, "h", "builtins.RuntimeError", "boom", {"pid": 7}]]}
    assert Delivery.from_kwargs({"kb": newer}).history == (
        Attempt(number=1, started_at=1.5, seconds=0.25, host="h", exception_class="builtins.RuntimeError", exception_message="boom"),
    )


# -- the kwargs of the previous version -------------------------------------------------------------


def test_an_old_task_without_kwargs_is_a_first_delivery() -> None:
    assert Delivery.from_kwargs({}) == FIRST_DELIVERY


def test_an_old_retry_keeps_its_first_failure_time() -> None:
    delivery = Delivery.from_kwargs({"kb_first_failed_at": "2026-01-02T03:04:05.678000+00:00"})
    assert delivery == Delivery(first_failed_at=WHEN)


def test_an_old_requeue_is_a_requeue_without_a_known_id() -> None:
    delivery = Delivery.from_kwargs({"kb_requeued": True})
    assert delivery.requeued and delivery.requeue_id == LEGACY_REQUEUE_ID and delivery.step is Step.HANDLE


def test_an_old_pending_dead_letter_is_a_store_step_with_its_record_and_store_attempts() -> None:
    delivery = Delivery.from_kwargs({
        "kb_first_failed_at": "2026-01-02T03:04:05.678000+00:00", "kb_requeued": True,
        "kb_pending_dead_letter": V1_RECORD, "kb_store_attempt": 2,
    })
    assert delivery.step is Step.STORE and delivery.dead_letter == decode_dead_letter(V1_RECORD)
    assert delivery.store_attempts == 2 and delivery.first_failed_at == WHEN and delivery.requeued


def test_an_old_pending_resolve_is_a_resolve_step() -> None:
    delivery = Delivery.from_kwargs({"kb_requeued": True, "kb_pending_resolve": True, "kb_store_attempt": 5})
    assert delivery == Delivery(step=Step.RESOLVE, requeue_id=LEGACY_REQUEUE_ID, store_attempts=5)


def test_an_old_state_is_written_back_in_the_new_form() -> None:
    old = Delivery.from_kwargs({"kb_requeued": True, "kb_pending_dead_letter": V1_RECORD, "kb_store_attempt": 1})
    kwargs = through_json(old.store_failed().to_kwargs())
    assert list(kwargs) == ["kb"] and Delivery.from_kwargs(kwargs) == old.store_failed()


@pytest.mark.parametrize("delivery", [
    wire.FIRST_DELIVERY,
    wire.Delivery(group="orders-bridge", token="t-1", waits=2),
    wire.Delivery(requeue_id="r-1", trace="00-" + "a" * 32 + "-" + "b" * 16 + "-00"),
])
def test_kwargs_with_trace_writes_what_a_copy_of_the_delivery_with_that_trace_writes(delivery: wire.Delivery) -> None:
    trace = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert wire.kwargs_with_trace(delivery.to_kwargs(), trace) == replace(delivery, trace=trace).to_kwargs()
