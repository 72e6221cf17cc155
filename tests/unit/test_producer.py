"""Producer parts that need no broker: what becomes bytes, what is refused before anything is sent."""

from __future__ import annotations

import math
import threading

import pytest

from kafkabridge import SerializationError
from kafkabridge.producer import SendResult, Sent, serialize_headers, serialize_key, serialize_value


def test_values_are_bytes_as_they_are_none_as_a_tombstone_and_anything_else_compact_json() -> None:
    assert serialize_value(b"\x00\xff") == b"\x00\xff"
    assert serialize_value(bytearray(b"ab")) == b"ab"
    assert serialize_value(None) is None
    assert serialize_value({"id": 1, "lines": [1.5, "é"]}) == '{"id":1,"lines":[1.5,"é"]}'.encode()
    assert serialize_value("text") == b'"text"' and serialize_value(42) == b"42" and serialize_value(True) == b"true"


@pytest.mark.parametrize("value", [object(), {1, 2}, math.nan, {"x": math.inf}])
def test_a_value_json_cannot_carry_is_refused_with_a_clear_error(value: object) -> None:
    with pytest.raises(SerializationError, match="not JSON-serialisable.*pass bytes"):
        serialize_value(value)


def test_keys_are_utf8_or_bytes_and_other_types_are_refused() -> None:
    assert serialize_key("clé") == "clé".encode() and serialize_key(b"\xff") == b"\xff" and serialize_key(None) is None
    with pytest.raises(SerializationError, match="keys must be str or bytes"):
        serialize_key(42)  # type: ignore[arg-type]


def test_headers_keep_order_and_repeats_and_encode_text() -> None:
    assert serialize_headers([("a", "é"), ("a", b"\x00"), ("n", None)]) == [("a", "é".encode()), ("a", b"\x00"), ("n", None)]
    assert serialize_headers({"x": "1"}) == [("x", b"1")]
    with pytest.raises(SerializationError):
        serialize_headers([("a", 1)])  # type: ignore[list-item]
    with pytest.raises(SerializationError):
        serialize_headers([(b"bytes-name", b"v")])  # type: ignore[list-item]


class PollThread:
    """What a SendResult needs of its producer: the shared lock, and work scheduled on the poll thread."""

    def __init__(self, run_at_once: bool = False) -> None:
        self._results_lock = threading.Lock()
        self.scheduled: list = []
        self.run_at_once = run_at_once

    def _schedule(self, work) -> None:  # type: ignore[no-untyped-def]
        work() if self.run_at_once else self.scheduled.append(work)


def test_a_result_runs_each_callback_once_whether_registered_before_or_after_completion() -> None:
    producer = PollThread()
    scheduled = producer.scheduled
    result = SendResult("orders", producer, 0.0)  # type: ignore[arg-type]
    seen: list = []
    result.on_success(lambda sent: seen.append(("early", sent))).on_failure(lambda error: seen.append(("failed", error)))
    result.on_success(lambda sent: seen.append(("second", sent)))
    sent = Sent("orders", 0, 7, None, 0.01)
    result._complete(sent, None)
    result._complete(None, RuntimeError("a second report changes nothing"))
    result.on_success(lambda s: seen.append(("late", s))).on_failure(lambda error: seen.append(("never", error)))
    assert seen == [("early", sent), ("second", sent)] and len(scheduled) == 1  # the late one goes to the poll thread
    scheduled[0]()
    assert seen == [("early", sent), ("second", sent), ("late", sent)] and result.result(0) == sent


def test_result_times_out_while_undecided() -> None:
    with pytest.raises(TimeoutError):
        SendResult("orders", PollThread(run_at_once=True), 0.0).result(timeout=0.01)  # type: ignore[arg-type]


def test_a_producer_used_in_a_forked_child_refuses_to_send() -> None:
    import multiprocessing
    import socket

    from kafkabridge import BridgeSettings, ProduceError, Producer
    from kafkabridge.hooks import HookDispatcher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    producer = Producer(settings=BridgeSettings(bootstrap_servers=f"127.0.0.1:{port}"), hooks=HookDispatcher())
    try:
        def child(out) -> None:  # type: ignore[no-untyped-def]
            try:
                producer.send("orders", b"x")
                out.send("sent")
            except ProduceError as error:
                out.send(str(error))

        receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(target=child, args=(sending,))
        process.start()
        assert receiving.poll(30)
        assert "made in another process" in receiving.recv()
        process.join(30)
    finally:
        producer.close(timeout=0)
