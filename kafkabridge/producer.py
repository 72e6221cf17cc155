"""``Producer``: send records to Kafka without blocking, and learn each one's fate through a ``SendResult``.

::

    producer = Producer()           # the process's settings (kafkabridge.configure / the Django app)
    producer.send("orders", {"id": 42}, key="42").on_success(lambda sent: ...).on_failure(lambda error: ...)
    sent = producer.send("orders", b"raw bytes", key="43").result(timeout=10)

**The poll thread.** Each producer owns one daemon thread, ``kafkabridge-producer-poll``, that decides
the results of librdkafka's delivery reports and runs every ``on_success``/``on_failure`` callback,
including one registered after its result completed. While records are being sent, ``send`` itself
collects the delivery reports that are ready (as confluent-kafka's own examples call ``poll(0)``), and
the poll thread serves them in batches: one thread switch per batch, not one per record (a callback
runs at most ``SENDING_WINDOW`` after its report while sends go on). Callbacks never run on the
thread that called ``send``, never two at once for one producer, and must not block for long (they
hold up the delivery reports behind them). A callback that raises is logged and the others still run.

**Never a silent drop.** A record the broker refuses, that times out (``message.timeout.ms``), or
that cannot enter a local queue that stays full for ``queue_full_timeout`` seconds fails its result
with :class:`~kafkabridge.errors.ProduceError` and reaches ``Hooks.on_produce_failed``.

**Shutdown.** :meth:`Producer.close` flushes, then fails whatever could not be delivered in time. An
open producer is closed (with ``EXIT_FLUSH_TIMEOUT``) when the interpreter exits normally (``atexit``:
management commands, scripts, web servers) and when a Celery pool process shuts down
(``worker_process_shutdown``, where billiard skips ``atexit``). A process killed by a signal it does
not handle loses what was still queued: call ``flush()`` where your own code knows it is done.

**One per process.** librdkafka's threads do not survive a fork: make producers in the process that
uses them (in a Celery pool process, at first use, not at import in the worker's main process); a
producer used in a child of the process that made it refuses to send.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from celery.signals import worker_process_shutdown
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import Producer as KafkaProducer

from .errors import ProduceError, SerializationError
from .hooks import HookDispatcher
from .message import from_millis
from .observability import tracing
from .schema import schema_for
from .settings import BridgeSettings

logger = logging.getLogger(__name__)

DEFAULT_CONFIG: Mapping[str, Any] = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
"""librdkafka options every producer starts from; ``PRODUCER_CONFIG`` and ``config=`` go over them."""
DEFAULT_QUEUE_FULL_TIMEOUT = 5.0
"""Seconds ``send`` waits for room in librdkafka's local queue before it fails the result."""
EXIT_FLUSH_TIMEOUT = 10.0
"""Seconds a producer still open at process exit may take to deliver what it holds."""
ANY_PARTITION = -1
"""librdkafka's "unassigned" partition: the partitioner picks one from the key."""
POLL_INTERVAL = 0.1
"""Seconds the poll thread waits for a delivery report; bounds how late a late-registered callback runs."""
SERVE_INTERVAL = 0.005
"""Seconds between the poll thread's batches while the senders collect the delivery reports."""
COLLECT_INTERVAL = 0.001
"""Seconds between two collections of delivery reports by ``send`` (each one lets the GIL go)."""
SERVE_BATCH = 256
"""Most delivery reports decided under one hold of the results lock. A flush after a burst brings tens
of thousands at once: served in batches this size, each batch's objects die before the garbage
collector's first generation fills (alive together, they would be traced into the oldest)."""
SENDING_WINDOW = 0.05
"""Seconds after the last ``send`` during which the senders are trusted to collect delivery reports;
after it the poll thread waits on librdkafka itself. Bounds how late a callback runs after a burst."""

Value = Any
"""bytes (sent as they are), None (a tombstone), or anything ``json.dumps`` accepts (sent as JSON)."""
HeaderInput = Mapping[str, "bytes | str | None"] | Iterable[tuple[str, "bytes | str | None"]]


class Sent(NamedTuple):
    """Where a record landed. ``latency``: seconds from ``send`` to the broker's acknowledgement.

    A named tuple, not a dataclass: one is made per delivered record, on the poll thread.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    """The record's Kafka timestamp in milliseconds (None when the broker gave none)."""
    latency: float

    @property
    def timestamp(self) -> datetime | None:
        return from_millis(self.timestamp_ms)


Callback = Callable[[Any], object]


class SendResult:
    """The fate of one ``send``: a small future. Callbacks run once, on the producer's poll thread.

    Kept light, because one is made for every record and lives until its delivery report: it is
    itself librdkafka's delivery callback (no closure per record), it keeps the report and its first
    callback of each kind in slots (no tuple, no list: objects that outlive a garbage collection cost
    every later full collection), and makes an event only when somebody waits in :meth:`result`.
    """

    __slots__ = ("topic", "started", "_producer", "_span", "_event", "_done", "_sent", "_error",
                 "_on_success", "_on_failure", "_more", "_kafka_error", "_message")

    _sent: Sent | None
    _error: BaseException | None
    """Both set when the result is decided, and read only once ``_done``."""
    _kafka_error: KafkaError | None
    _message: Any
    """librdkafka's delivery report, set by :meth:`__call__` and read only after it."""

    def __init__(self, topic: str, producer: Producer, started: float, span: Any = None) -> None:
        self.topic = topic
        self.started = started
        self._producer = producer
        self._span = span
        self._event: threading.Event | None = None
        self._done = False
        self._on_success: Callback | None = None
        self._on_failure: Callback | None = None
        self._more: list[tuple[bool, Callback]] | None = None
        """Callbacks after the first of their kind, in order."""

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        """librdkafka's delivery report for this record, inside a ``poll()`` of the poll thread or of
        ``send``: kept for the batch the poll thread serves next (one GIL hold for many reports)."""
        self._kafka_error, self._message = error, message
        self._producer._reports.append(self)

    def on_success(self, callback: Callable[[Sent], object]) -> SendResult:
        """Call ``callback(sent)`` once the record is in Kafka (at once, on the poll thread, if it is already)."""
        return self._add(True, callback)

    def on_failure(self, callback: Callable[[BaseException], object]) -> SendResult:
        """Call ``callback(error)`` once the record has failed for good."""
        return self._add(False, callback)

    def done(self) -> bool:
        return self._done

    def result(self, timeout: float | None = None) -> Sent:
        """Wait up to ``timeout`` seconds: the :class:`Sent` metadata, or raise the failure
        (:class:`~kafkabridge.errors.ProduceError`); :class:`TimeoutError` while still undecided."""
        with self._producer._results_lock:
            if not self._done and self._event is None:
                self._event = threading.Event()
            event = self._event
        if event is not None and not event.wait(timeout):
            raise TimeoutError(f"no delivery report for the record sent to {self.topic!r} within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._sent is not None
        return self._sent

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like :meth:`result`; the failure, or None when the record was delivered."""
        try:
            self.result(timeout)
        except TimeoutError:
            raise
        except BaseException as error:
            return error
        return None

    def _add(self, on_success: bool, callback: Callback) -> SendResult:
        with self._producer._results_lock:
            if not self._done:
                if on_success and self._on_success is None and self._more is None:
                    self._on_success = callback
                elif not on_success and self._on_failure is None and self._more is None:
                    self._on_failure = callback
                elif self._more is None:
                    self._more = [(on_success, callback)]
                else:
                    self._more.append((on_success, callback))
                return self
        if on_success == (self._error is None):
            self._producer._schedule(lambda: self._run(callback))
        return self

    def _complete(self, sent: Sent | None, error: BaseException | None) -> None:
        """Decide the result (once) and run the callbacks registered so far; called on the poll thread."""
        with self._producer._results_lock:
            decided = self._decide(sent, error)
        if decided:
            self._announce()

    def _decide(self, sent: Sent | None, error: BaseException | None) -> bool:
        """Set the outcome, under ``_results_lock``; False if it was already decided. From then on no
        other thread touches the callbacks (``_add`` schedules late ones), so :meth:`_announce` may
        run them without the lock."""
        if self._done:
            return False
        self._sent, self._error = sent, error
        self._done = True
        return True

    def _announce(self) -> None:
        """Wake a waiting :meth:`result`, end the send's span, run the callbacks (poll thread, no lock held)."""
        error = self._error
        if self._event is not None:
            self._event.set()
        if self._span is not None:
            sent = self._sent
            tracing.end_send(self._span, sent and sent.partition, sent and sent.offset, error)
        first = self._on_success if error is None else self._on_failure
        more, self._on_success, self._on_failure, self._more = self._more, None, None, None
        if first is not None:
            self._run(first)
        for on_success, callback in more or ():
            if on_success == (error is None):
                self._run(callback)

    def _run(self, callback: Callback) -> None:
        try:
            callback(self._sent if self._error is None else self._error)
        except Exception:
            logger.exception("a send callback for %r raised; the other callbacks still run", self.topic)


class Producer:
    """Sends records to Kafka from any thread; see the module docstring for threads and shutdown.

    ``settings`` default to the process's (``kafkabridge.configure``), and so do ``hooks``; ``config``
    holds librdkafka options over ``DEFAULT_CONFIG`` and ``settings.producer_config``.
    """

    def __init__(
        self,
        *,
        settings: BridgeSettings | None = None,
        config: Mapping[str, Any] | None = None,
        hooks: HookDispatcher | None = None,
        queue_full_timeout: float = DEFAULT_QUEUE_FULL_TIMEOUT,
    ) -> None:
        if settings is None or hooks is None:
            from . import runtime

            wiring = runtime.current()
            settings = settings or wiring.settings
            hooks = hooks if hooks is not None else wiring.hooks
        self.settings = settings
        self._hooks = hooks
        self._queue_full_timeout = queue_full_timeout
        self.config = {"bootstrap.servers": settings.bootstrap_servers, **DEFAULT_CONFIG, **settings.producer_config, **(config or {})}
        self._kafka = KafkaProducer(self.config)
        self._generation = _fork_generation
        self._pending: list[Callable[[], None]] = []
        self._reports: deque[SendResult] = deque()
        """Delivery reports collected by any thread's ``poll()``, decided by the poll thread."""
        self._pending_lock = threading.Lock()
        self._results_lock = threading.Lock()
        """Orders a result's completion (poll thread) with callbacks registered on other threads."""
        self._send_lock = threading.Lock()
        self._sent_total = 0
        """Records sent, counted by the senders under ``_send_lock`` (uncontended: the poll thread never takes it)."""
        self._decided_total = 0
        """Records decided and their callbacks run, counted by the poll thread."""
        self._last_send = 0.0
        self._next_collect = 0.0
        self._flushers = 0
        self._idle = threading.Condition()
        self._schemas: dict[str, Any] = {}
        self._closing = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._poll_loop, name="kafkabridge-producer-poll", daemon=True)
        self._thread.start()
        _open_producers.add(self)
        _install_exit_handlers()

    def send(
        self,
        topic: str,
        value: Value = None,
        *,
        key: str | bytes | None = None,
        headers: HeaderInput | None = None,
        partition: int | None = None,
    ) -> SendResult:
        """Queue one record; returns at once (or after at most ``queue_full_timeout`` while the local
        queue is full). Raises :class:`~kafkabridge.errors.SerializationError`, and
        :class:`~kafkabridge.errors.SchemaError` when ``topic`` has a schema the value does not match:
        nothing was sent then."""
        if self._closed:
            raise ProduceError(topic, "the producer is closed")
        if self._generation != _fork_generation:
            raise ProduceError(topic, "this producer was made in another process (before a fork): make one in each process, at first use")
        payload = value if type(value) is bytes else serialize_value(value)
        raw_key = key if key is None or type(key) is bytes else serialize_key(key)
        schema = self._schemas.get(topic, _UNKNOWN)
        if schema is _UNKNOWN:
            schema = self._schema(topic)
        if schema is not None:
            schema.check_value(payload)
        raw_headers = None if headers is None else serialize_headers(headers)
        self._last_send = started = time.monotonic()
        span = None
        if tracing.enabled(started):  # W3C trace context into the headers
            span, raw_headers = tracing.start_send(topic, raw_headers)
        result = SendResult(topic, self, started, span)
        with self._send_lock:
            self._sent_total += 1
        deadline = 0.0
        while True:
            try:
                if raw_headers is None:  # positional: confluent-kafka parses keywords slowly
                    self._kafka.produce(topic, payload, raw_key, ANY_PARTITION if partition is None else partition, result)
                else:
                    self._kafka.produce(topic, payload, raw_key, ANY_PARTITION if partition is None else partition, result, headers=raw_headers)
                if started >= self._next_collect:  # collect the delivery reports that are ready, for the poll thread
                    self._next_collect = started + COLLECT_INTERVAL
                    self._kafka.poll(0)
                return result
            except BufferError:  # room comes back as delivery reports are collected
                deadline = deadline or started + self._queue_full_timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._kafka.poll(min(remaining, POLL_INTERVAL))
            except KafkaException as error:  # refused at once: unknown partition, record too large, fatal error
                kafka_error = error.args[0] if error.args else None
                problem = kafka_error.str() if isinstance(kafka_error, KafkaError) else str(error)
                self._schedule(lambda: self._fail(result, ProduceError(topic, problem, kafka_error=kafka_error)))
                return result
            except BaseException:  # a programming error (TypeError, ...): nothing is queued
                with self._send_lock:
                    self._sent_total -= 1
                raise
        problem = f"the local queue stayed full for {self._queue_full_timeout:g}s (queue.buffering.max.messages/kbytes)"
        self._schedule(lambda: self._fail(result, ProduceError(topic, problem)))
        return result

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every record sent so far has its outcome and its callbacks ran; returns how
        many are still undecided after ``timeout`` seconds (0: all done)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            self._flushers += 1  # the poll thread flushes librdkafka meanwhile: queued records go now, linger.ms or not
            try:
                while len(self):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._idle.wait(min(remaining, POLL_INTERVAL) if remaining is not None else POLL_INTERVAL)
                return len(self)
            finally:
                self._flushers -= 1

    def close(self, timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
        """Flush for up to ``timeout`` seconds, fail what is still undecided (purged, each result
        and hook told), then stop the poll thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        left = self.flush(timeout)
        if left:
            logger.warning("closing a producer with %d undelivered record(s): they fail (purged)", left)
            self._kafka.purge()
            self.flush(5.0)  # the poll thread serves the purge's delivery reports
        self._closing.set()
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._run_scheduled()  # callbacks registered while the poll thread was stopping
        _open_producers.discard(self)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Records sent and not yet decided (with their callbacks run). Not librdkafka's queue length, which
        also counts its own events (a refused connection's error, for one)."""
        return self._sent_total - self._decided_total

    # -- the poll thread ------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._closing.is_set():
            try:
                if self._flushers:
                    self._kafka.flush(POLL_INTERVAL)  # serves delivery reports here too, on this thread
                elif time.monotonic() - self._last_send < SENDING_WINDOW:
                    self._closing.wait(SERVE_INTERVAL)  # the senders collect the reports meanwhile
                else:
                    self._kafka.poll(POLL_INTERVAL)
            except Exception:
                logger.exception("polling the Kafka producer failed; polling on")
            self._serve_reports()
            self._run_scheduled()
        self._serve_reports()
        self._run_scheduled()

    def _schedule(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the poll thread (at once on this thread if the poll thread has stopped)."""
        if self._closing.is_set() and not self._thread.is_alive():
            work()
            return
        with self._pending_lock:
            self._pending.append(work)

    def _run_scheduled(self) -> None:
        with self._pending_lock:
            work, self._pending = self._pending, []
        for item in work:
            try:
                item()
            except Exception:
                logger.exception("scheduled producer work failed")

    def _schema(self, topic: str) -> Any:
        if topic not in self._schemas:
            self._schemas[topic] = schema_for(self.settings.schemas, topic)
        return self._schemas[topic]

    def _serve_reports(self) -> None:
        """Decide the results of the delivery reports ``poll()`` collected and run their callbacks (poll thread)."""
        waiting = len(self._reports)  # reports collected meanwhile wait for the next turn
        while waiting:
            waiting -= self._serve_batch(min(waiting, SERVE_BATCH))

    def _serve_batch(self, served: int) -> int:
        """The next ``served`` reports, in their order, decided under one hold of ``_results_lock``."""
        reports = self._reports
        hooks = self._hooks.hooks
        outcomes: list[tuple[SendResult, Sent | None, ProduceError | None]] = []
        for _ in range(served):
            result = reports.popleft()
            error, message, result._message = result._kafka_error, result._message, None
            try:
                if error is not None:
                    failure = ProduceError(result.topic, error.str(), kafka_error=error)
                    self._report_failure(result, failure)
                    outcomes.append((result, None, failure))
                    continue
                latency = message.latency()
                latency = time.monotonic() - result.started if latency is None else latency
                stamp = message.timestamp()[1]
                sent = _new_sent(Sent, (result.topic, message.partition(), message.offset(), stamp if stamp > 0 else None, latency))
                if hooks:  # before the result is decided: whoever sees it decided sees the hooks' effects
                    self._hooks.emit("on_produced", result.topic, sent.partition, latency)
                outcomes.append((result, sent, None))
            except Exception as unreadable:  # a bug of ours: the result still fails rather than wait forever
                logger.exception("handling a delivery report for %r failed", result.topic)
                outcomes.append((result, None, ProduceError(result.topic, f"its delivery report could not be read: {unreadable!r}")))
        with self._results_lock:  # once per batch, not once per record
            decided = [result for result, sent, failure in outcomes if result._decide(sent, failure)]
        for result in decided:
            try:
                result._announce()
            except Exception:  # a callback's own exception is logged by _run: this is ours
                logger.exception("announcing the result of a record sent to %r failed", result.topic)
        self._decided(served)
        return served

    def _fail(self, result: SendResult, error: ProduceError) -> None:
        self._report_failure(result, error)
        result._complete(None, error)
        self._decided(1)

    def _report_failure(self, result: SendResult, error: ProduceError) -> None:
        logger.warning("%s", error)
        self._hooks.emit("on_produce_failed", result.topic, error)

    def _decided(self, count: int) -> None:
        """``count`` more records have their outcome; wake a flush waiting for the last one."""
        self._decided_total += count
        if self._flushers and not len(self):
            with self._idle:
                self._idle.notify_all()


_new_sent = tuple.__new__
"""Makes a :class:`Sent` from a tuple of its fields without the named tuple's ``__new__`` (a Python
function: a third of what deciding a delivered record costs)."""

_UNKNOWN = object()
"""A topic whose schema this producer has not looked up yet."""


def serialize_value(value: Value) -> bytes | None:
    """bytes as they are, None as a tombstone, anything else as compact UTF-8 JSON (no NaN/Infinity)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise SerializationError(f"a value of type {type(value).__name__}", f"not JSON-serialisable ({error}); pass bytes to send your own encoding") from error


def serialize_key(key: str | bytes | None) -> bytes | None:
    """str keys as UTF-8, bytes as they are, None for no key; anything else is refused (keys pick partitions)."""
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    raise SerializationError(f"a key of type {type(key).__name__}", "keys must be str or bytes (convert it yourself: it decides the partition)")


def serialize_headers(headers: HeaderInput | None) -> list[tuple[str, bytes | None]] | None:
    """(name, value) pairs in order, repeats kept; str values as UTF-8."""
    if headers is None:
        return None
    pairs: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes | None]] = []
    for pair in pairs:
        if not (isinstance(pair, Sequence) and len(pair) == 2 and isinstance(pair[0], str)):
            raise SerializationError(f"header {pair!r}", "headers are (str name, bytes | str | None value) pairs")
        name, value = pair
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif value is not None and not isinstance(value, bytes):
            raise SerializationError(f"header {name!r}", f"a value of type {type(value).__name__}; use bytes, str or None")
        out.append((name, value))
    return out


# -- forks, and closing what is still open when the process ends ----------------------------------

_fork_generation = 0
"""Goes up in every forked child: a producer made before the fork sees another number and refuses."""


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)

_open_producers: weakref.WeakSet[Producer] = weakref.WeakSet()
_exit_handlers_installed = False


def close_all(timeout: float = EXIT_FLUSH_TIMEOUT) -> None:
    """Close every producer of this process that is still open (each flushes up to ``timeout``)."""
    for producer in list(_open_producers):
        try:
            producer.close(timeout)
        except Exception:
            logger.exception("closing a producer at exit failed")


def _install_exit_handlers() -> None:
    global _exit_handlers_installed
    if _exit_handlers_installed:
        return
    _exit_handlers_installed = True
    atexit.register(close_all)
    worker_process_shutdown.connect(_close_all_in_pool_process, weak=False, dispatch_uid="kafkabridge.producer.close_all")


def _close_all_in_pool_process(**_: object) -> None:
    close_all()
