"""Producer against real Kafka: callbacks with metadata, late registration, real failures, shutdown."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from kafkabridge import BridgeSettings, Hooks, ProduceError, Producer, Sent
from kafkabridge.hooks import HookDispatcher
from tests import support
from tests.app import recorder


class RecordingHooks(Hooks):
    def __init__(self) -> None:
        self.produced: list[tuple[str, int, float]] = []
        self.failed: list[tuple[str, BaseException]] = []

    def on_produced(self, topic: str, partition: int, seconds: float) -> None:
        self.produced.append((topic, partition, seconds))

    def on_produce_failed(self, topic: str, error: BaseException) -> None:
        self.failed.append((topic, error))


class Calls:
    """What callbacks received, and on which thread, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, str]] = []
        self._lock = threading.Lock()

    def __call__(self, label: str):  # type: ignore[no-untyped-def]
        def callback(value: Any) -> None:
            with self._lock:
                self.seen.append((label, value, threading.current_thread().name))
        return callback

    def labels(self) -> list[str]:
        return [label for label, _, _ in self.seen]


@pytest.fixture
def hooks() -> RecordingHooks:
    return RecordingHooks()


def producer_with(hooks: RecordingHooks, bootstrap: str = support.KAFKA, **config: Any) -> Producer:
    return Producer(settings=BridgeSettings(bootstrap_servers=bootstrap), hooks=HookDispatcher([hooks]), config=config)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_success_callbacks_get_the_records_metadata_on_the_poll_thread(
    ns: str, kafka_admin: AdminClient, hooks: RecordingHooks
) -> None:
    topic = f"{ns}.produced"
    support.create_topics(kafka_admin, [topic], partitions=1)
    calls = Calls()
    with producer_with(hooks) as producer:
        results = [
            producer.send(topic, {"id": 1, "name": "café"}, key="1", headers=[("origin", "test"), ("raw", b"\x00\xff")])
            .on_success(calls("ok-1")).on_failure(calls("failed-1")),
            producer.send(topic, b"\x00raw bytes", key=b"\xff2").on_success(calls("ok-2")),
            producer.send(topic, "text", key=None).on_success(calls("ok-3")),
        ]
        sent = [result.result(timeout=30) for result in results]
        assert producer.flush(10) == 0

    assert calls.labels() == ["ok-1", "ok-2", "ok-3"]
    assert {thread for _, _, thread in calls.seen} == {"kafkabridge-producer-poll"}
    assert [value for _, value, _ in calls.seen] == sent
    assert [(s.topic, s.partition, s.offset) for s in sent] == [(topic, 0, 0), (topic, 0, 1), (topic, 0, 2)]
    assert all(isinstance(s, Sent) and s.timestamp is not None and 0 < s.latency < 30 for s in sent)
    assert [(t, p) for t, p, _ in hooks.produced] == [(topic, 0)] * 3 and not hooks.failed
    in_kafka = support.read_topic(topic, partitions=1)
    assert in_kafka == {
        f"{topic}/0@0": (b"1", '{"id":1,"name":"café"}'.encode()),
        f"{topic}/0@1": (b"\xff2", b"\x00raw bytes"),
        f"{topic}/0@2": (None, b'"text"'),
    }


def test_a_callback_registered_after_completion_runs_exactly_once(ns: str, kafka_admin: AdminClient, hooks: RecordingHooks) -> None:
    topic = f"{ns}.late"
    support.create_topics(kafka_admin, [topic], partitions=1)
    calls = Calls()
    with producer_with(hooks) as producer:
        result = producer.send(topic, {"late": True}).on_success(calls("early"))
        sent = result.result(timeout=30)
        result.on_success(calls("late")).on_failure(calls("never"))
        support.wait_until(lambda: "late" in calls.labels(), timeout=5, what="the late callback")
        result.on_success(calls("later"))
        support.wait_until(lambda: "later" in calls.labels(), timeout=5, what="the second late callback")
        producer.send(topic, {"after": True}).result(timeout=30)  # more delivery reports served meanwhile
        assert producer.flush(10) == 0
    assert calls.labels() == ["early", "late", "later"]
    assert all(value == sent and thread == "kafkabridge-producer-poll" for _, value, thread in calls.seen)


def test_senders_on_many_threads_each_get_every_callback_once_and_flush_waits_for_the_last(
    ns: str, kafka_admin: AdminClient, hooks: RecordingHooks
) -> None:
    """Four threads send at once, registering callbacks before and after their results complete, while a
    fifth flushes: flush returns 0 only once every record is decided and every callback has run."""
    topic = f"{ns}.threads"
    support.create_topics(kafka_admin, [topic], partitions=3)
    per_thread, seen, late = 2_000, [], []
    with producer_with(hooks) as producer:

        def sender(name: str) -> None:
            for i in range(per_thread):
                result = producer.send(topic, b"x", key=f"{name}-{i}").on_success(lambda sent, k=f"{name}-{i}": seen.append(k))
                if i % 100 == 0:  # sometimes after completion, sometimes racing it
                    result.on_success(lambda sent, k=f"{name}-{i}": late.append(k))

        threads = [threading.Thread(target=sender, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        flushes = [producer.flush(30)]  # while the senders are still sending: whatever it returns, it waits
        for thread in threads:
            thread.join()
        assert producer.flush(30) == 0
        assert len(seen) == 4 * per_thread, "flush returned 0 before every callback ran"
        assert len(late) == 4 * per_thread // 100
    assert sorted(seen) == sorted(f"t{n}-{i}" for n in range(4) for i in range(per_thread)), "a callback ran twice or never"
    assert sorted(late) == sorted(f"t{n}-{i}" for n in range(4) for i in range(0, per_thread, 100))
    assert len(hooks.produced) == 4 * per_thread and not hooks.failed and flushes[0] >= 0


def test_a_delivery_report_the_producer_cannot_read_fails_its_result_and_the_next_records_still_go(
    ns: str, kafka_admin: AdminClient, hooks: RecordingHooks, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug of ours while reading a report (here: making its ``Sent``) fails that record's result, logged:
    nobody waits forever on ``result()`` or ``flush()``, and the records after it are decided as usual."""
    topic = f"{ns}.unreadable"
    support.create_topics(kafka_admin, [topic], partitions=1)
    calls = Calls()
    import kafkabridge.producer as producer_module

    make_sent = producer_module._new_sent

    def broken_once(cls: type, fields: tuple) -> Any:
        monkeypatch.setattr(producer_module, "_new_sent", make_sent)
        raise TypeError("a bug while reading the report")

    with caplog.at_level(logging.ERROR, logger="kafkabridge.producer"), producer_with(hooks) as producer:
        producer.send(topic, b"warm-up").result(timeout=30)
        monkeypatch.setattr(producer_module, "_new_sent", broken_once)
        broken = producer.send(topic, b"first").on_failure(calls("failed")).on_success(calls("ok"))
        with pytest.raises(ProduceError, match="could not be read: TypeError"):
            broken.result(timeout=30)
        after = producer.send(topic, b"second").result(timeout=30)
        assert producer.flush(10) == 0
    assert calls.labels() == ["failed"] and after.offset == 2
    assert any("a bug while reading the report" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_topic_the_broker_does_not_have_fails_once_with_its_error(ns: str, kafka_admin: AdminClient, hooks: RecordingHooks) -> None:
    topic = f"{ns}.does-not-exist"  # scripts/services runs Kafka with auto.create.topics.enable=false
    calls = Calls()
    with producer_with(hooks, **{"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 20000}) as producer:
        result = producer.send(topic, {"id": 1}, key="1").on_success(calls("ok")).on_failure(calls("failed"))
        with pytest.raises(ProduceError) as raised:
            result.result(timeout=30)
        result.on_failure(calls("failed-late"))
        support.wait_until(lambda: len(calls.seen) == 2, timeout=5, what="the late failure callback")
        assert producer.flush(10) == 0

    error = raised.value
    assert error.kafka_error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
    assert calls.labels() == ["failed", "failed-late"] and all(value is error for _, value, _ in calls.seen)
    assert [(t, e) for t, e in hooks.failed] == [(topic, error)] and not hooks.produced
    assert topic not in kafka_admin.list_topics(timeout=10).topics


def test_a_broker_that_is_not_there_fails_the_result_when_the_message_times_out(hooks: RecordingHooks) -> None:
    calls = Calls()
    with producer_with(hooks, f"127.0.0.1:{closed_port()}", **{"message.timeout.ms": 1500}) as producer:
        result = producer.send("orders", {"id": 1}).on_failure(calls("failed")).on_success(calls("ok"))
        with pytest.raises(ProduceError, match="timed out") as raised:
            result.result(timeout=30)
        assert producer.flush(10) == 0
    assert raised.value.kafka_error.code() == KafkaError._MSG_TIMED_OUT
    assert calls.labels() == ["failed"]
    assert [t for t, _ in hooks.failed] == ["orders"]


def test_a_full_local_queue_fails_the_result_after_the_bound_never_dropping_silently(hooks: RecordingHooks) -> None:
    producer = Producer(
        settings=BridgeSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}"), hooks=HookDispatcher([hooks]),
        config={"queue.buffering.max.messages": 1, "message.timeout.ms": 60000}, queue_full_timeout=0.5,
    )
    first = producer.send("orders", b"fills the queue")
    second = producer.send("orders", b"finds it full")
    with pytest.raises(ProduceError, match="local queue stayed full"):
        second.result(timeout=10)
    assert not first.done()
    producer.close(timeout=0.5)  # the first is purged: it fails too, and says so
    with pytest.raises(ProduceError, match="[Pp]urge"):
        first.result(timeout=1)
    assert len(hooks.failed) == 2


def test_a_callback_that_raises_is_logged_and_the_others_still_run(
    ns: str, kafka_admin: AdminClient, hooks: RecordingHooks, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{ns}.raising"
    support.create_topics(kafka_admin, [topic], partitions=1)
    calls = Calls()

    def explode(_: Sent) -> None:
        raise RuntimeError("a broken callback")

    with caplog.at_level(logging.ERROR, logger="kafkabridge.producer"), producer_with(hooks) as producer:
        result = producer.send(topic, {"id": 1}).on_success(calls("before")).on_success(explode).on_success(calls("after"))
        result.result(timeout=30)
        result.on_success(explode).on_success(calls("late"))
        support.wait_until(lambda: "late" in calls.labels(), timeout=5, what="the callback after a late raising one")
    assert calls.labels() == ["before", "after", "late"]
    broken = [r for r in caplog.records if r.exc_info and "a broken callback" in str(r.exc_info[1])]
    assert len(broken) == 2


def test_a_process_that_exits_without_flushing_still_delivers(ns: str, kafka_admin: AdminClient) -> None:
    topic = f"{ns}.at-exit"
    support.create_topics(kafka_admin, [topic], partitions=1)
    script = (
        "import sys; from kafkabridge import BridgeSettings, Producer; from kafkabridge.hooks import HookDispatcher\n"
        f"p = Producer(settings=BridgeSettings(bootstrap_servers={support.KAFKA!r}), hooks=HookDispatcher(), config={{'linger.ms': 60000}})\n"
        f"p.send({topic!r}, {{'bye': True}}, key='k')\n"
        "sys.exit(0)\n"  # no flush: the atexit handler delivers it
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=support.ROOT)
    assert time.monotonic() - started < 30  # sent at exit, not after linger.ms (60 s)
    assert support.read_topic(topic, partitions=1, timeout=10) == {f"{topic}/0@0": (b"k", b'{"bye":true}')}


def test_a_celery_pool_process_delivers_what_it_sent_when_it_shuts_down(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path, database: None
) -> None:
    sends, sent = f"{ns}.sends", f"{ns}.sent"
    support.create_topics(kafka_admin, [sends, sent], partitions=1)
    support.produce(sends, [(b"k", b'{"order": 1}', None)])
    worker = support.start_worker(ns, logs, env=support.process_env(ns, extra={"KBTEST_PRODUCER_LINGER_MS": "60000"}))
    try:
        bridges.append(support.start_bridge(ns, [sends], logs))
        support.wait_until(lambda: recorder.handled_counts(ns) == {f"{sends}/0@0": 1}, timeout=60, what="the message to be handled")
        assert support.end_offsets(sent, partitions=1) == {0: 0}  # still lingering in the pool process (60 s)
    finally:
        worker.stop()  # warm shutdown: each pool process closes its producers at worker_process_shutdown
    assert support.read_topic(sent, partitions=1, timeout=10) == {f"{sent}/0@0": (b"k", b'{"order": 1}')}
