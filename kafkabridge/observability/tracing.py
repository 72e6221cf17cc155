"""OpenTelemetry tracing: one trace follows a message from ``Producer.send`` to its last handler run.

::

    send {topic}          PRODUCER   Producer.send; its context goes into the record's headers (W3C traceparent)
    └─ dispatch {topic}   CONSUMER   the bridge hands the record to Celery; its traceparent rides in the
       │                             task's delivery state (``Delivery.trace``), so it survives retries
       ├─ handle {topic}  CONSUMER   one span per handler run (attempt 1, 2, ...); a failure is recorded on it,
       │                             with a ``retry`` event (countdown) when another run follows
       │  └─ dead-letter {topic}     storing the dead letter (or a span of its own when no run is current)
       └─ ...
    └─ requeue {topic}    PRODUCER   an operator's requeue: a child of the context in the record's headers,
       └─ handle {topic}             so the runs after a requeue join the same trace

Nothing here runs unless an OpenTelemetry SDK is configured in the process (a real ``TracerProvider``):
:func:`enabled` reads the clock (and looks at the global provider once a second), so without an SDK,
or without the ``opentelemetry-api`` package, the producer and the bridge pay one cheap call per send and per batch.
The SDK, its exporters and sampling are the application's to configure (docs/observability.md); set
it up before the first message, or it is noticed within a second.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import TYPE_CHECKING, Any, ContextManager, Iterable, Iterator, Sequence

if TYPE_CHECKING:
    from ..dead_letter.record import DeadLetterRecord
    from ..message import Message
    from ..wire import Delivery

TRACER_NAME = "kafkabridge"
TRACE_HEADERS = ("traceparent", "tracestate")
"""Header names the producer replaces with its own context (W3C Trace Context)."""


@cache
def _api() -> Any:
    """The ``opentelemetry`` modules this module uses, or None when the API is not installed."""
    try:
        from opentelemetry import context, propagate, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None

    class Api:
        pass

    api = Api()
    api.context, api.propagate, api.trace = context, propagate, trace
    api.traceparent = TraceContextTextMapPropagator()
    api.off = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    return api


LOOK_AGAIN = 1.0
"""Seconds between looks at the global tracer provider while there is none: the look reads the
environment, too slow for every send. Once a provider is set it stays (OpenTelemetry sets it once)."""
_on = False
_next_look = 0.0


def enabled(now: float | None = None) -> bool:
    """Whether an OpenTelemetry SDK (a real tracer provider) is configured in this process; a provider
    set meanwhile is noticed within ``LOOK_AGAIN`` seconds. ``now``: ``time.monotonic()``, when the
    caller has just read it (a producer's ``send`` has)."""
    global _on, _next_look
    if _on:
        return True
    if now is None:
        now = time.monotonic()
    if now < _next_look:
        return False
    _next_look = now + LOOK_AGAIN
    api = _api()
    _on = api is not None and not isinstance(api.trace.get_tracer_provider(), api.off)
    return _on


def _tracer() -> Any:
    return _tracer_of(_api().trace.get_tracer_provider())


@cache
def _tracer_of(provider: Any) -> Any:
    return provider.get_tracer(TRACER_NAME)


# -- carriers ---------------------------------------------------------------------------------------


class _HeaderGetter:
    """Reads a propagator's fields from Kafka headers ((name, bytes | None) pairs)."""

    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        found = [value.decode("utf-8", "replace") for name, value in carrier if name == key and value is not None]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [name for name, _ in carrier]


def _context_of_headers(headers: Sequence[tuple[str, bytes | None]]) -> Any:
    """The context the record's headers carry. The common case, a lone ``traceparent`` (what our producer
    writes), is parsed here: the global propagator's generic path was a third of a dispatch span's cost."""
    api = _api()
    traceparent_value = None
    for name, value in headers:
        if name == "traceparent":
            if traceparent_value is not None:
                break  # repeated: let the propagator decide
            traceparent_value = value
        elif name in _OTHER_CONTEXT_HEADERS:
            break
    else:
        if traceparent_value is None:
            return None  # no context: the span is a root
        parsed = _parse_traceparent(traceparent_value)
        if parsed is not None:
            return parsed
    return api.propagate.extract(headers, getter=_HeaderGetter())


_OTHER_CONTEXT_HEADERS = frozenset(("tracestate", "baggage"))
"""Headers the fast path leaves to the configured propagator."""


def _parse_traceparent(value: bytes | None) -> Any:
    """A W3C ``00-<trace id>-<span id>-<flags>`` as a remote parent context; None when it is not one."""
    if value is None or len(value) != 55:
        return None
    try:
        text = value.decode("ascii")
        version, trace_id, span_id, flags = text.split("-")
        if version != "00":
            return None
        api = _api()
        context = api.trace.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                                        trace_flags=api.trace.TraceFlags(int(flags, 16)))
    except ValueError:
        return None
    if not context.is_valid:
        return None
    return api.trace.set_span_in_context(api.trace.NonRecordingSpan(context))


def _context_of(message: Message, delivery: Delivery | None) -> Any:
    """The parent of a worker-side span: the bridge's (``delivery.trace``), else the record's headers."""
    if delivery is not None and isinstance(delivery.trace, str):
        return _api().traceparent.extract({"traceparent": delivery.trace})
    return _context_of_headers(message.headers)


def traceparent(span: Any) -> str | None:
    """``span``'s W3C traceparent (``00-<trace id>-<span id>-<flags>``), for :attr:`kafkabridge.wire.Delivery.trace`;
    None when the span is not recorded (sampled out): the task then shares its batch's delivery state
    (no per-message kwargs) and the handler's span falls back to the record's headers, sampled out too."""
    context = span.get_span_context()
    if not (context.is_valid and span.is_recording()):
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _attributes(message: Message, **more: Any) -> dict[str, Any]:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": message.topic,
        "messaging.destination.partition.id": str(message.partition),
        "messaging.kafka.offset": message.offset,
        "messaging.message.id": str(message.id),
        **{name: value for name, value in more.items() if value is not None},
    }


# -- the producer -----------------------------------------------------------------------------------


def start_send(topic: str, headers: list[tuple[str, bytes | None]] | None) -> tuple[Any, list[tuple[str, bytes | None]] | None]:
    """The ``send {topic}`` span (None when tracing is off) and the headers with its context injected.

    Its parent is the current span; with none, the context the headers already carry (a record sent
    again, e.g. a dead letter replayed to its topic, continues its trace). End it with :func:`end_send`.
    """
    if not enabled():
        return None, headers
    api = _api()
    parent = None if api.trace.get_current_span().get_span_context().is_valid or not headers else _context_of_headers(headers)
    span = _tracer().start_span(
        f"send {topic}", context=parent, kind=api.trace.SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.operation.type": "send"},
    )
    carrier: dict[str, str] = {}
    api.propagate.inject(carrier, context=api.trace.set_span_in_context(span))
    kept = [(name, value) for name, value in headers or () if name not in carrier and name not in TRACE_HEADERS]
    return span, kept + [(name, value.encode()) for name, value in carrier.items()]


def end_send(span: Any, partition: int | None = None, offset: int | None = None, error: BaseException | None = None) -> None:
    """End a ``send`` span at the record's outcome (any thread)."""
    if span is None:
        return
    if error is not None:
        _failed(span, error)
    else:
        span.set_attributes({"messaging.destination.partition.id": str(partition), "messaging.kafka.offset": offset})
    span.end()


# -- the bridge -------------------------------------------------------------------------------------


@contextmanager
def dispatching(messages: Sequence[Message]) -> Iterator[Iterable[str | None]]:
    """One ``dispatch {topic}`` span per message, each a child of its record's headers' context; yields
    their traceparents (for the task's delivery state), in order; None for each when tracing is off,
    and for a record whose context is not sampled (no span: see :func:`_parent_not_sampled`).
    A publish that raises is recorded on every span."""
    if not enabled():
        yield itertools.repeat(None)
        return
    api = _api()
    tracer = _tracer()
    kind = api.trace.SpanKind.CONSUMER
    spans = [
        None if message.headers and _parent_not_sampled(message.headers) else
        tracer.start_span(f"dispatch {message.topic}", context=_context_of_headers(message.headers) if message.headers else None,
                          kind=kind, attributes={
                              "messaging.system": "kafka", "messaging.destination.name": message.topic,
                              "messaging.destination.partition.id": str(message.partition), "messaging.kafka.offset": message.offset,
                          })
        for message in messages
    ]
    try:
        yield [None if span is None else traceparent(span) for span in spans]
    except BaseException as error:
        for span in spans:
            if span is not None:
                _failed(span, error)
        raise
    finally:
        for span in spans:
            if span is not None:
                span.end()


def _parent_not_sampled(headers: Sequence[tuple[str, bytes | None]]) -> bool:
    """Whether the record's trace context says "not sampled" (one W3C traceparent, flags without the
    sampled bit). The bridge then makes no span and asks no sampler: OpenTelemetry's default, parent-based
    sampling, would drop it, and the SDK's start of a dropped span still cost about a tenth of a bridged
    message. The task carries no traceparent then, so the handler's span takes the record's context."""
    found = None
    for name, value in headers:
        if name == "traceparent":
            if found is not None:
                return False  # repeated: let the propagator decide
            found = value
    if found is None or len(found) != 55 or not found.startswith(b"00-"):
        return False
    try:
        return not int(found[53:55], 16) & 1
    except ValueError:
        return False


@contextmanager
def requeueing(message: Message, handler: str) -> Iterator[str | None]:
    """The ``requeue {topic}`` span of an operator's requeue (a child of the record's headers'
    context); yields its traceparent for the requeued task, or None when tracing is off."""
    if not enabled():
        yield None
        return
    api = _api()
    with _tracer().start_as_current_span(
        f"requeue {message.topic}", context=_context_of_headers(message.headers), kind=api.trace.SpanKind.PRODUCER,
        attributes=_attributes(message, **{"kafkabridge.handler": handler}),
    ) as span:
        yield traceparent(span)


# -- the worker -------------------------------------------------------------------------------------


def handling(message: Message, handler: str, delivery: Delivery) -> ContextManager[Any]:
    """The current ``handle {topic}`` span of one handler run: a child of the bridge's span (or of the
    requeue's), else of the record's headers' context. Failures are recorded by :func:`run_failed`
    and :func:`dead_letter_span`, not by the exceptions that leave it (Celery's ``Retry`` is one)."""
    if not enabled():
        return nullcontext()
    api = _api()
    return _tracer().start_as_current_span(
        f"handle {message.topic}", context=_context_of(message, delivery), kind=api.trace.SpanKind.CONSUMER,
        attributes=_attributes(message, **{"kafkabridge.handler": handler, "kafkabridge.attempt": message.attempt}),
        record_exception=False, set_status_on_exception=False,
    )


def run_failed(error: BaseException) -> None:
    """On the current handler span: the handler raised ``error`` (retried or dead-lettered next)."""
    if enabled():
        _failed(_api().trace.get_current_span(), error)


def retry_scheduled(countdown: float) -> None:
    """On the current handler span: another run follows in ``countdown`` seconds."""
    if enabled():
        _api().trace.get_current_span().add_event("retry", {"kafkabridge.countdown": countdown})


def dead_letter_span(record: DeadLetterRecord, delivery: Delivery) -> ContextManager[Any]:
    """The ``dead-letter {topic}`` span around storing ``record``: a child of the current handler span,
    or, when no run is current (an unreadable record, a crash loop, a store retried later), of the
    message's trace. A store that raises is recorded on it."""
    if not enabled():
        return nullcontext()
    api = _api()
    message = record.message
    current = api.trace.get_current_span()
    if current.get_span_context().is_valid:
        _failed(current, None, record.reason)
    parent = None if current.get_span_context().is_valid else _context_of(message, delivery)
    return _tracer().start_as_current_span(
        f"dead-letter {message.topic}", context=parent, kind=api.trace.SpanKind.INTERNAL,
        attributes=_attributes(message, **{
            "kafkabridge.handler": record.handler, "kafkabridge.attempts": record.attempts,
            "kafkabridge.reason": record.reason, "error.type": record.exception_class or None,
        }),
    )


def _failed(span: Any, error: BaseException | None, description: str | None = None) -> None:
    api = _api()
    if error is not None:
        span.record_exception(error)
    span.set_status(api.trace.Status(api.trace.StatusCode.ERROR, description or (repr(error) if error is not None else None)))
