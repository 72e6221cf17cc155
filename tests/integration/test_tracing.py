"""One OpenTelemetry trace follows a message through real processes: producer, bridge, worker runs, dead letter, requeue."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkabridge import Producer
from kafkabridge.contrib.django import services
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.observability import tracing
from tests import support
from tests.app.tracing import TRACE_DIR_VARIABLE, export_to, read_spans

HANDLER = "tests.app.tasks.always_fails"  # max_attempts=3: two retries, then a dead letter


def by_name(spans: list[dict], name: str) -> list[dict]:
    return [span for span in spans if span["name"] == name]


def children(spans: list[dict], parent: dict, name: str) -> list[dict]:
    return sorted((s for s in spans if s["parent_id"] == parent["span_id"] and s["name"] == name),
                  key=lambda s: s["attributes"].get("kafkabridge.attempt", 0))


def test_one_trace_holds_the_send_the_dispatch_every_run_the_retries_the_dead_letter_and_a_requeue(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path, tmp_path: Path, requeues_to_this_test: None, database: None
) -> None:
    # Given every process exports its spans (this one too), and a record sent with kafkabridge's Producer
    traces = tmp_path / "spans"
    export_to(traces)
    support.wait_until(tracing.enabled, timeout=5, what="this process to notice its tracer provider")
    topic = f"{ns}.always_fails"
    support.create_topics(kafka_admin, [topic], partitions=1)
    with Producer() as producer:
        producer.send(topic, {"id": 1}, key="1", headers=[("origin", "test")]).result(timeout=30)
    env = support.process_env(ns, extra={TRACE_DIR_VARIABLE: str(traces)})
    worker = support.start_worker(ns, logs, env=env)
    try:
        # When the bridge dispatches it, its handler fails three times and it is dead-lettered
        bridges.append(support.start_bridge(ns, [topic], logs, env=env))
        support.wait_until(lambda: len(by_name(read_spans(traces), f"dead-letter {topic}")) == 1, timeout=60, what="the dead letter's span")
        row = FailedMessage.objects.get(source_topic=topic)

        # and an operator requeues it (it fails three times again)
        assert len(services.requeue([row.pk], actor=None).requeued) == 1
        support.wait_until(lambda: len(by_name(read_spans(traces), f"dead-letter {topic}")) == 2, timeout=60, what="the second dead letter's span")
    finally:
        worker.stop()

    # Then every span is in one trace: send → dispatch → handle ×3 (retry events) → dead-letter, and send → requeue → the same again
    spans = [s for s in read_spans(traces) if s["attributes"].get("messaging.destination.name") == topic]
    assert len({s["trace_id"] for s in spans}) == 1, {(s["name"], s["trace_id"]) for s in spans}
    [send] = by_name(spans, f"send {topic}")
    assert send["parent_id"] is None and send["kind"] == "PRODUCER"
    [dispatch] = children(spans, send, f"dispatch {topic}")
    [requeue] = children(spans, send, f"requeue {topic}")
    processes = {s["pid"] for s in (send, dispatch)} | {s["pid"] for s in children(spans, dispatch, f"handle {topic}")}
    assert len(processes) >= 3  # the test, the bridge and (a pool process of) the worker
    for parent in (dispatch, requeue):
        runs = children(spans, parent, f"handle {topic}")
        assert [run["attributes"]["kafkabridge.attempt"] for run in runs] == [1, 2, 3]
        assert [run["events"] for run in runs] == [["exception", "retry"], ["exception", "retry"], ["exception"]]
        assert all(run["status"] == "ERROR" and run["attributes"]["kafkabridge.handler"] == HANDLER for run in runs)
        [dead_letter] = children(spans, runs[-1], f"dead-letter {topic}")
        assert dead_letter["attributes"]["kafkabridge.attempts"] == 3
        assert dead_letter["attributes"]["error.type"] == "builtins.RuntimeError"
    assert len(spans) == 1 + 2 * (1 + 3 + 1)  # nothing else: no stray span, no second dispatch
