"""Tracing's switch and carriers, each case in a fresh interpreter (a process sets its tracer provider once)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from kafkabridge.wire import Delivery

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def run(*parts: str) -> None:
    code = "\n".join(textwrap.dedent(part) for part in parts)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


WITH_SDK = """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
"""


def test_without_an_sdk_nothing_is_added_to_headers_or_tasks() -> None:
    run("""
        from kafkabridge.message import Message
        from kafkabridge.observability import tracing
        assert not tracing.enabled()
        headers = [("a", b"1")]
        assert tracing.start_send("t", headers) == (None, headers)
        with tracing.dispatching([Message("t", 0, 1, None, b"v")]) as traces:
            assert next(iter(traces)) is None
        with tracing.requeueing(Message("t", 0, 1, None, b"v"), "h") as trace:
            assert trace is None
    """)


def test_without_the_opentelemetry_package_the_core_still_works() -> None:
    run("""
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from kafkabridge.observability import tracing
        from kafkabridge.wire import Delivery
        assert not tracing.enabled() and tracing.start_send("t", None) == (None, None)
        with tracing.handling(None, "h", Delivery()):
            tracing.run_failed(ValueError()); tracing.retry_scheduled(1.0)
    """)


def test_a_send_injects_its_context_replacing_an_older_one_and_continues_the_trace_the_headers_carry() -> None:
    run(WITH_SDK, f"""
        from kafkabridge.observability import tracing
        old = "{TRACEPARENT}"
        span, headers = tracing.start_send("t", [("traceparent", old.encode()), ("k", b"v")])
        tracing.end_send(span, 0, 5)
        [(name, value)] = [h for h in headers if h[0] == "traceparent"]
        assert ("k", b"v") in headers and value.decode() != old
        [sent] = exporter.get_finished_spans()
        assert f"{{sent.context.trace_id:032x}}" == old.split("-")[1]  # the replayed record's trace goes on
        assert f"{{sent.parent.span_id:016x}}" == old.split("-")[2]
        assert value.decode().split("-")[2] == f"{{sent.context.span_id:016x}}"
        assert sent.attributes["messaging.kafka.offset"] == 5
    """)


def test_dispatch_spans_are_children_of_each_records_context_and_their_traceparents_reach_the_task() -> None:
    run(WITH_SDK, f"""
        from kafkabridge.message import Message
        from kafkabridge.observability import tracing
        from kafkabridge.wire import Delivery
        messages = [Message("t", 0, 1, None, b"v", headers=(("traceparent", b"{TRACEPARENT}"),)), Message("t", 0, 2, None, b"v")]
        with tracing.dispatching(messages) as traces:
            traces = list(traces)
        first, second = exporter.get_finished_spans()
        assert f"{{first.context.trace_id:032x}}" == "{TRACEPARENT}".split("-")[1] and second.parent is None
        assert traces[0].split("-")[2] == f"{{first.context.span_id:016x}}"
        with tracing.handling(messages[1], "h", Delivery(trace=traces[1])):
            pass
        run = exporter.get_finished_spans()[-1]
        assert run.name == "handle t" and run.parent.span_id == second.context.span_id
    """)


def test_the_trace_field_travels_in_the_delivery_state_and_older_tasks_have_none() -> None:
    delivery = Delivery(trace=TRACEPARENT)
    assert delivery.to_kwargs() == {"kb": {"v": 1, "trace": TRACEPARENT}}
    assert Delivery.from_kwargs(delivery.to_kwargs()) == delivery
    assert Delivery.from_kwargs({"kb": {"v": 1, "group": "g", "token": "t"}}).trace is None
    assert Delivery().to_kwargs() == {}


def test_a_dispatch_span_continues_the_trace_of_its_record_parsed_fast_or_by_the_propagator() -> None:
    run(WITH_SDK, f"""
        from kafkabridge.message import Message
        from kafkabridge.observability import tracing
        lone = Message("t", 0, 1, None, b"v", headers=[("traceparent", b"{TRACEPARENT}")])
        with_state = Message("t", 0, 2, None, b"v", headers=[("traceparent", b"{TRACEPARENT}"), ("tracestate", b"k=v")])
        broken = Message("t", 0, 3, None, b"v", headers=[("traceparent", b"00-nothex-b7ad6b7169203331-01")])
        unsampled = Message("t", 0, 4, None, b"v", headers=[("traceparent", b"{TRACEPARENT[:-2]}00")])
        with tracing.dispatching([lone, with_state, broken, unsampled]) as traces:
            parents = list(traces)
        spans = {{s.attributes["messaging.kafka.offset"]: s for s in exporter.get_finished_spans()}}
        trace_id = int("{TRACEPARENT.split('-')[1]}", 16)
        assert spans[1].context.trace_id == trace_id and spans[1].parent.span_id == int("{TRACEPARENT.split('-')[2]}", 16)
        assert spans[2].context.trace_id == trace_id and spans[2].context.trace_state.get("k") == "v"
        assert spans[3].context.trace_id != trace_id and spans[3].parent is None, "a malformed traceparent starts a new trace"
        assert 4 not in spans and parents[3] is None, "a parent sampled out: no span, and no traceparent for the task"
        assert parents[0] == "00-{TRACEPARENT.split('-')[1]}-" + format(spans[1].context.span_id, "016x") + "-01"
    """)


def test_a_record_whose_context_is_not_sampled_gets_no_dispatch_span_and_no_sampler_is_asked() -> None:
    run(f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler

        class Counting(Sampler):
            asked = 0
            def should_sample(self, *args, **kwargs):
                Counting.asked += 1
                return ALWAYS_ON.should_sample(*args, **kwargs)
            def get_description(self):
                return "counting"

        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=Counting())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        from kafkabridge.message import Message
        from kafkabridge.observability import tracing
        unsampled = [Message("t", 0, i, None, b"v", headers=[("traceparent", b"{TRACEPARENT[:-2]}00")]) for i in range(50)]
        sampled = Message("t", 0, 50, None, b"v", headers=[("traceparent", b"{TRACEPARENT}")])
        with tracing.dispatching([*unsampled, sampled]) as traces:
            parents = list(traces)
        assert parents[:50] == [None] * 50 and parents[50] is not None
        assert Counting.asked == 1, Counting.asked
        assert [s.attributes["messaging.kafka.offset"] for s in exporter.get_finished_spans()] == [50]
    """)
