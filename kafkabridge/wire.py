"""What travels between the bridge, the workers and requeue: the one home of kafkabridge's wire format.

A handler task is a plain Celery task (protocol 2, JSON), so a stock worker runs it. kafkabridge fills
it in like this:

==================  ===========================================================================
part of the task    content
==================  ===========================================================================
task id             ``topic/partition@offset`` when the bridge delivers a record;
                    ``topic/partition@offset:requeue:<12 hex>`` when an operator requeues it
                    (:func:`task_id`). Celery keeps the id across retries.
``args[0]``         the envelope: the Kafka record (:func:`encode_envelope`).
``kwargs["kb"]``    the delivery state (:class:`Delivery`); absent on a first delivery that no
                    ledger tracks, so that message is exactly what ``send_task(name, args=[envelope])``
                    writes.
``retries`` header  Celery's retry count; the handler's attempt is ``retries + 1``, so a
                    requeue (published with ``retries`` 0) starts again at attempt 1. A tracked
                    message counts its attempts in the completion ledger instead, so that a
                    re-dispatch goes on counting.
==================  ===========================================================================

Envelope, version 1. Celery's JSON cannot carry bytes, so keys, values and header values are
base64; ``null`` stays ``null``; header order and repeated names are kept::

    {"v": 1, "topic": str, "partition": int, "offset": int, "key": b64 | null, "value": b64 | null,
     "headers": [[name, b64 | null], ...], "timestamp_ms": int | null, "problem": str | null}

Delivery state, version 1, under the one kwarg ``kb``; a field at its default is left out::

    {"v": 1, "step": "handle" | "store" | "resolve", "first_failed_at": ISO 8601,
     "requeue_id": str, "store_attempts": int, "dead_letter": {dead-letter record},
     "group": str, "token": str, "waits": int, "trace": traceparent, "history": [attempt, ...]}

``history`` holds the failed attempts of this delivery, oldest first, each a compact array
``[number, started_at, seconds, host, exception_class, exception_message]`` (Unix seconds and
durations to the millisecond; the message cut to 500 characters; at most the first 5 and the last 20
attempts, see :func:`~kafkabridge.dead_letter.record.with_attempt`). It costs about 100 bytes per
attempt plus the exception message, in every countdown retry's kwargs.

``group`` and ``token`` are set when completion tracking follows the message (the default mode):
the consumer group whose ledger records its outcome, and the bridge's dispatch it belongs to.
``waits`` counts Celery retries that were no attempt (a rate-limit wait, a wait for an older run). ``trace`` is the W3C
traceparent of the span that dispatched the task (set only while OpenTelemetry tracing is on).

A dead-letter record is its facts plus ``"message"``: the envelope with ``"attempt"`` added, and
``"history"`` (attempts as above) when it has any.

Compatibility: readers ignore fields they do not know and default the ones that are missing, so a
new field is one line in :class:`Delivery` and needs no new version; ``v`` changes only if a field
changes meaning. Tasks queued before the ``kb`` kwarg existed carry up to five kwargs
(``kb_first_failed_at``, ``kb_requeued``, ``kb_pending_dead_letter``, ``kb_pending_resolve``,
``kb_store_attempt``); :meth:`Delivery.from_kwargs` reads them too. The other way round, upgrade
workers first: a worker older than ``kb`` ignores it, so it would run the handler again instead of
saving a pending dead letter, and would not mark a requeued message resolved.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, Sequence
from uuid import uuid4

from .dead_letter.record import Attempt, DeadLetterRecord, with_attempt
from .message import Header, Message, MessageId, from_millis

ENVELOPE_VERSION = 1
DELIVERY_VERSION = 1
DELIVERY_KWARG = "kb"
"""The one Celery keyword argument kafkabridge adds to a handler task."""
REQUEUE_MARK = ":requeue:"
LEGACY_REQUEUE_ID = ""
"""The requeue id of a requeue queued before the ``kb`` kwarg: it was only in the task id."""

WireHeaders = list[list[str | None]]


# -- bytes and headers ------------------------------------------------------------------------------


def encode_bytes(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def decode_bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def encode_headers(headers: Iterable[Header]) -> WireHeaders:
    """Kafka headers as ``[[name, base64 or None], ...]``: JSON-safe, in order, repeats kept."""
    return [[name, encode_bytes(value)] for name, value in headers]


def decode_headers(data: Iterable[Sequence[Any]] | None) -> tuple[Header, ...]:
    return tuple((str(name), decode_bytes(value)) for name, value in data or ())


# -- the envelope -----------------------------------------------------------------------------------


def encode_envelope(message: Message) -> dict[str, Any]:
    """The record as a JSON-safe dict that :func:`decode_envelope` turns back into an equal message."""
    return {
        "v": ENVELOPE_VERSION,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": encode_bytes(message.key),
        "value": encode_bytes(message.value),
        "headers": encode_headers(message.headers),
        "timestamp_ms": _millis(message.timestamp),  # an unreadable Kafka timestamp travels as None
        "problem": message.problem,
    }


def decode_envelope(envelope: Mapping[str, Any], *, attempt: int = 1) -> Message:
    """The message an envelope carries; ``attempt`` comes from Celery's retry count, not the envelope."""
    if envelope.get("v") != ENVELOPE_VERSION:
        raise ValueError(f"unsupported kafkabridge envelope version {envelope.get('v')!r}")
    return Message(
        topic=envelope["topic"],
        partition=int(envelope["partition"]),
        offset=int(envelope["offset"]),
        key=decode_bytes(envelope.get("key")),
        value=decode_bytes(envelope.get("value")),
        headers=decode_headers(envelope.get("headers")),
        timestamp=from_millis(envelope.get("timestamp_ms")),
        attempt=attempt,
        problem=envelope.get("problem"),
    )


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


# -- attempt history (it rides in every retry, so it travels as compact arrays) ---------------------


def encode_history(history: Iterable[Attempt]) -> list[list[Any]]:
    """Attempts as ``[number, started_at, seconds, host, exception_class, exception_message]``."""
    return [
        [a.number, round(a.started_at, 3), round(a.seconds, 3), a.host, a.exception_class, a.exception_message]
        for a in history
    ]


def decode_history(data: Iterable[Sequence[Any]] | None) -> tuple[Attempt, ...]:
    """Reads :func:`encode_history`'s arrays; fields added at their end later are ignored."""
    return tuple(
        Attempt(number=int(n), started_at=float(at), seconds=float(s), host=str(host), exception_class=str(cls),
                exception_message=str(text))
        for n, at, s, host, cls, text, *_ in data or ()
    )


# -- dead-letter records (they ride in the delivery state while the store is down) ----------------

_RECORD_TIMES = ("first_failed_at", "last_failed_at")
_RECORD_CODED = {"message", "history", *_RECORD_TIMES}


def encode_dead_letter(record: DeadLetterRecord) -> dict[str, Any]:
    data = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in _RECORD_CODED}
    data["message"] = encode_envelope(record.message) | {"attempt": record.message.attempt}
    data.update({name: getattr(record, name).isoformat() for name in _RECORD_TIMES})
    if record.history:
        data["history"] = encode_history(record.history)
    return data


def decode_dead_letter(data: Mapping[str, Any]) -> DeadLetterRecord:
    """Reads any version; a record written before attempt histories has an empty one."""
    known = {f.name for f in fields(DeadLetterRecord)} - _RECORD_CODED
    envelope = data["message"]
    return DeadLetterRecord(
        **{name: value for name, value in data.items() if name in known},
        message=decode_envelope(envelope, attempt=int(envelope.get("attempt", 1))),
        **{name: datetime.fromisoformat(data[name]) for name in _RECORD_TIMES},
        history=decode_history(data.get("history")),
    )


# -- task ids ---------------------------------------------------------------------------------------


def task_id(message_id: MessageId, requeue_id: str | None = None) -> str:
    """The Celery task id of a delivery: the record's id, which the dead-letter row is keyed on too,
    and for a requeue a suffix so that a requeue never collides with the task it replaces."""
    return str(message_id) if requeue_id is None else f"{message_id}{REQUEUE_MARK}{requeue_id}"


def new_requeue_id() -> str:
    return uuid4().hex[:12]


# -- the delivery state -----------------------------------------------------------------------------


class Step(StrEnum):
    """What a handler task does when it runs."""

    HANDLE = "handle"
    """Run the handler on the message (and retry or dead-letter it if that fails)."""
    STORE = "store"
    """Save the pending dead letter; an earlier try found the store down."""
    RESOLVE = "resolve"
    """Mark the dead letter of a requeued message resolved; an earlier try found the store down."""


@dataclass(frozen=True, slots=True)
class _Codec:
    """How a :class:`Delivery` field that is not JSON by itself travels."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _field(default: Any, codec: _Codec | None = None) -> Any:
    return field(default=default, metadata={"codec": codec} if codec else {})


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """Where one handler task stands, carried from run to run in the task's ``kb`` kwarg.

    To add a field, add one line here with a default (and a codec when it is not JSON by itself):
    older tasks lack it and get the default; older workers ignore it.
    """

    step: Step = _field(Step.HANDLE, _Codec(str, Step))
    first_failed_at: datetime | None = _field(None, _Codec(datetime.isoformat, datetime.fromisoformat))
    """When the handler first failed on this delivery; the dead letter records it."""
    requeue_id: str | None = None
    """Set when an operator requeued the message; success then marks its dead letter resolved."""
    store_attempts: int = 0
    """Failed tries of the store so far (saving the dead letter, or marking it resolved)."""
    dead_letter: DeadLetterRecord | None = _field(None, _Codec(encode_dead_letter, decode_dead_letter))
    """The record to save when ``step`` is ``STORE``; the handler does not run again meanwhile."""
    group: str | None = None
    """The consumer group whose completion ledger tracks the message; None when nothing tracks it
    (commit-after-publish, a requeue)."""
    token: str | None = None
    """The bridge's dispatch this task belongs to; when the bridge dispatches the message again, the
    older copy stands down (see :mod:`kafkabridge.completion`)."""
    waits: int = 0
    """Celery retries that were waits, not attempts: for a rate-limit token, or for an older run."""
    trace: str | None = None
    """The W3C traceparent of the span that dispatched the task (the bridge's, or a requeue's): the
    parent of every handler run's span, across retries (:mod:`kafkabridge.observability.tracing`)."""
    history: tuple[Attempt, ...] = _field((), _Codec(encode_history, decode_history))
    """The failed attempts so far, oldest first and bounded; the dead letter records them."""

    def __post_init__(self) -> None:
        if (self.step is Step.STORE) != (self.dead_letter is not None):
            raise ValueError(f"a delivery at step {self.step.value!r} cannot carry dead_letter={self.dead_letter!r}")

    @property
    def requeued(self) -> bool:
        return self.requeue_id is not None

    @property
    def tracked(self) -> bool:
        return self.group is not None and self.token is not None

    def failed(self, at: datetime, attempt: Attempt | None = None) -> Delivery:
        """This delivery after the handler failed at ``at``: the first failure time is kept, ``attempt``
        joins the history."""
        history = self.history if attempt is None else with_attempt(self.history, attempt)
        return replace(self, first_failed_at=self.first_failed_at or at, history=history)

    def storing(self, record: DeadLetterRecord) -> Delivery:
        return replace(self, step=Step.STORE, dead_letter=record, history=())  # the record carries the history now

    def resolving(self) -> Delivery:
        return replace(self, step=Step.RESOLVE)

    def store_failed(self) -> Delivery:
        return replace(self, store_attempts=self.store_attempts + 1)

    def waited(self) -> Delivery:
        """This delivery after a wait that is not an attempt (Celery counts it as a retry all the same)."""
        return replace(self, waits=self.waits + 1)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": DELIVERY_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                codec = f.metadata.get("codec")
                data[f.name] = codec.encode(value) if codec else value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """Reads any version: fields it does not know are ignored, missing or null ones defaulted."""
        values = {}
        for f in fields(cls):
            if data.get(f.name) is not None:
                codec = f.metadata.get("codec")
                values[f.name] = codec.decode(data[f.name]) if codec else data[f.name]
        return cls(**values)

    def to_kwargs(self) -> dict[str, Any]:
        """The task's kwargs: ``{"kb": ...}``, or none for a first delivery, so that the bridge writes what
        ``send_task(name, args=[envelope])`` writes and a worker of any version runs it."""
        return {} if self == FIRST_DELIVERY else {DELIVERY_KWARG: self.to_dict()}

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Delivery:
        """The delivery state of a task's kwargs, whichever version of kafkabridge queued it."""
        if DELIVERY_KWARG in kwargs:
            return cls.from_dict(kwargs[DELIVERY_KWARG])
        if not kwargs:  # what the bridge writes for a first delivery: most tasks, no new object each
            return FIRST_DELIVERY
        return _from_legacy_kwargs(kwargs)


FIRST_DELIVERY = Delivery()
"""The state of a message the bridge has just published."""


def kwargs_with_trace(kwargs: Mapping[str, Any], trace: str) -> dict[str, Any]:
    """A delivery's :meth:`Delivery.to_kwargs` with ``trace`` set: what ``replace(delivery, trace=trace).to_kwargs()``
    gives, without a copy of the delivery per message (a traced bridge does this for every message)."""
    state = kwargs.get(DELIVERY_KWARG) or {"v": DELIVERY_VERSION}
    return {DELIVERY_KWARG: {**state, "trace": trace}}


def _from_legacy_kwargs(kwargs: Mapping[str, Any]) -> Delivery:
    """The state as versions before the ``kb`` kwarg wrote it: up to five ``kb_*`` kwargs."""
    record = kwargs.get("kb_pending_dead_letter")
    first_failed_at = kwargs.get("kb_first_failed_at")
    if record is not None:
        step = Step.STORE
    elif kwargs.get("kb_pending_resolve"):
        step = Step.RESOLVE
    else:
        step = Step.HANDLE
    return Delivery(
        step=step,
        first_failed_at=datetime.fromisoformat(first_failed_at) if first_failed_at else None,
        requeue_id=LEGACY_REQUEUE_ID if kwargs.get("kb_requeued") else None,
        store_attempts=int(kwargs.get("kb_store_attempt") or 0),
        dead_letter=None if record is None else decode_dead_letter(record),
    )
