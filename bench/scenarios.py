"""Each benchmark measures one thing and returns messages per second (or milliseconds, or bytes).

All of them run against the same local services in the same command, so their ratios mean something
on a shared, noisy machine even when the absolute numbers do not.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator, Sequence

import psutil
from confluent_kafka import Consumer, Producer
from tqdm import tqdm

from kafkabridge import Hooks, Message, MessageId, build_bridge, runtime
from kafkabridge.completion import ledger_for
from kafkabridge.consumer.completion import CompletionTracking, new_token
from kafkabridge.consumer.publisher import CeleryPublisher
from kafkabridge.hooks import HookDispatcher
from kafkabridge.registry import Route
from kafkabridge.retry_policy import RetryPolicy
from kafkabridge.settings import COMMIT_AFTER_PUBLISH
from kafkabridge.wire import Delivery

from . import harness


def raw_consume(topic: str, count: int) -> float:
    """B1: ``consume(1000)`` in a loop that only counts."""
    consumer = Consumer({"bootstrap.servers": harness.KAFKA, "group.id": harness.unique("b1"), "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started, first = 0, 0.0, 0
    try:
        while seen < count:
            batch = consumer.consume(1000, 1.0)
            if batch and not started:
                started, first = time.perf_counter(), len(batch)
            seen += sum(1 for message in batch if message.error() is None)
        return (seen - first) / (time.perf_counter() - started)
    finally:
        consumer.close()


def raw_publish(app: object, count: int) -> float:
    """B3: Celery's ``apply_async`` in a loop, one reused producer, a no-op task, results ignored."""
    from bench.app.tasks import noop

    queue = harness.unique("b3")
    try:
        with app.producer_or_acquire() as producer:  # type: ignore[attr-defined]
            started = time.perf_counter()
            for i in range(count):
                noop.apply_async((i,), producer=producer, ignore_result=True, queue=queue)
            return count / (time.perf_counter() - started)
    finally:
        harness.broker().delete(queue)


class _PublishCounter(Hooks):
    def __init__(self, target: int) -> None:
        self.target, self.published, self.first, self.started, self.finished = target, 0, 0, 0.0, 0.0
        self.bridge: object = None
        self.at_finish: Callable[[], None] = lambda: None

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        if not self.started:
            self.started, self.first = time.perf_counter(), len(messages)
        self.published += len(messages)
        if self.published >= self.target and not self.finished:
            self.finished = time.perf_counter()
            self.at_finish()
            self.bridge.stop()  # type: ignore[attr-defined]


class _Timed:
    """Wraps one method of an object and adds up the seconds spent in it (and how often it ran)."""

    def __init__(self, owner: object, name: str) -> None:
        self.seconds, self.calls = 0.0, 0
        self._method = getattr(owner, name)
        setattr(owner, name, self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return self._method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence one logger's warnings (expected ones, e.g. a stopping bridge with messages still in flight)."""
    target = logging.getLogger(logger_name)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def bridge_throughput(
    app: object, topic: str, count: int, *, commit_after: str = COMMIT_AFTER_PUBLISH, details: list[dict] | None = None
) -> float:
    """Kafka → Celery broker through the bridge, in this process; nobody drains the Celery queue.

    ``commit_after="publish"``: offsets committed once the broker confirmed the publish (the line
    comparable with earlier reports). ``"completion"``: every batch is claimed in the completion
    ledger before it is published and stays in flight, since nothing finishes; ``max_in_flight`` is
    set above ``count`` so that the bound never holds a partition. The periodic ledger check is put
    off past the run (``commit_interval``): it reads every message in flight, and with nothing
    finishing that grows to the whole run's messages, far beyond what the default bound allows (it
    would measure the scenario, not the claims); :func:`ledger_check` measures it at the bound. With
    ``details``, the seconds spent in claims (and checks, if any) are appended to it.
    """
    queue, group = harness.unique("bridge"), harness.unique("bridge")
    counter = _PublishCounter(count)
    defaults = runtime.current().settings
    settings = replace(
        defaults, group_id=group, queue=queue, commit_after=commit_after,
        max_in_flight=max(count * 2, defaults.max_in_flight),
        commit_interval=defaults.commit_interval if commit_after == COMMIT_AFTER_PUBLISH else 3600.0,
        shutdown_timeout=2.0,  # a completion-mode stop would wait this long for outcomes that never come
    )
    bridge = build_bridge(app, settings, topics=[topic], hooks=HookDispatcher([counter]))  # type: ignore[arg-type]
    counter.bridge = bridge
    tracking = getattr(bridge, "_completion", None)  # private, looked at for this breakdown only
    if tracking is not None and details is not None:
        claims, checks = _Timed(tracking, "claim"), _Timed(tracking, "check")

        def snapshot() -> None:  # up to the last publish counted, not the stop after it
            details.append({"seconds": time.perf_counter() - counter.started, "messages": counter.published,
                            "claims": claims.calls, "claim_seconds": claims.seconds,
                            "checks": checks.calls, "check_seconds": checks.seconds})

        counter.at_finish = snapshot
    try:
        with _quiet("kafkabridge.consumer.bridge"):
            bridge.run()
    finally:
        harness.broker().delete(queue)
        harness.delete_ledger(group)
    return (counter.published - counter.first) / (counter.finished - counter.started)


def _fill_queue(app: object, queue: str, task_name: str, count: int, group: str | None = None) -> None:
    """``count`` tasks of ``task_name`` on ``queue``, published as the bridge publishes them, 1,000 a batch.

    With ``group``, each batch is claimed in that group's completion ledger under a new token and
    published with the delivery state that makes workers record it (begin before the handler,
    finish after), as a completion-mode bridge does; without it, as first deliveries nobody tracks.
    """
    route = Route(topic="bench.fill", task_name=task_name, retry_policy=RetryPolicy(), time_limit=None)
    publisher = CeleryPublisher(app, {"bench.fill": route}, queue=queue)  # type: ignore[arg-type]
    messages = [Message(topic="bench.fill", partition=0, offset=i, key=b"k", value=b'{"n": 1}') for i in range(count)]
    ledger = ledger_for(group, url=None, broker_url=harness.BROKER_URL) if group else None
    if ledger is not None:
        ledger.advance({("bench.fill", 0): 0})  # as the bridge does when it is assigned the partition
    for start in range(0, count, 1000):
        batch = messages[start : start + 1000]
        if ledger is None:
            publisher.publish(batch)
            continue
        token = new_token()
        ledger.claim({("bench.fill", 0): [m.offset for m in batch]}, token)
        publisher.publish(batch, Delivery(group=group, token=token))


def worker_drain(app: object, task_name: str, pool: str, count: int, *, tracked: bool = False) -> float:
    """B5 / handler path: a full queue of ``task_name`` drained by a stock ``celery worker``.

    ``tracked``: the tasks carry a completion-tracked delivery state, so every run also begins and
    finishes in the completion ledger (one Lua call on Redis per task; outcomes written in batches).
    """
    queue, idle = harness.unique("drain"), harness.unique("idle")
    group = harness.unique("drain") if tracked else None
    broker = harness.broker()
    worker = harness.start_worker(pool, idle)
    try:
        _fill_queue(app, queue, task_name, count, group)
        worker_name = f"{worker.name}@{os.uname().nodename}"
        started = time.perf_counter()
        app.control.add_consumer(queue, destination=[worker_name], reply=True, timeout=10)  # type: ignore[attr-defined]
        harness.wait_until(lambda: broker.llen(queue) == 0 and broker.hlen("unacked") == 0, 600, f"{queue} to drain")
        rate = count / (time.perf_counter() - started)
        if group is not None:
            _check_all_finished(group, count)
        return rate
    finally:
        worker.stop()
        broker.delete(queue)
        if group is not None:
            harness.delete_ledger(group)


def _check_all_finished(group: str, count: int) -> None:
    """A tracked drain only counts if the workers really recorded every outcome in the ledger (they write
    outcomes in batches, within ``FLUSH_INTERVAL`` of the run: the last ones may arrive just after the drain)."""
    ledger = ledger_for(group, url=None, broker_url=harness.BROKER_URL)
    key = ledger.keys("bench.fill", 0)["done"]
    try:
        harness.wait_until(lambda: harness.broker().zcard(key) == count, 10, "the ledger to hold every outcome")
    except Exception as error:
        done = harness.broker().zcard(key)
        raise RuntimeError(f"tracked drain: the ledger holds {done} final outcomes of {count}; the worker did not track them") from error


def ledger_round_trips(count: int, *, batched: bool = True) -> float:
    """Microseconds per message for what a worker adds in completion mode, called in a loop from this
    process on one partition's keys (claimed first, as the bridge does): ``begin`` before the run,
    carrying the outcome of the run before (as a worker does; the last one flushed inside the time).
    ``batched=False``: ``begin``, then a synchronous ``finish`` per message (the worker before batching)."""
    group = harness.unique("ledger")
    ledger = ledger_for(group, url=None, broker_url=harness.BROKER_URL)
    try:
        ledger.advance({("bench.ledger", 0): 0})
        token = new_token()
        ledger.claim({("bench.ledger", 0): range(count)}, token)
        started = time.perf_counter()
        previous: list[MessageId] = []
        for offset in range(count):
            message = MessageId("bench.ledger", 0, offset)
            if batched:
                ledger.begin(message, token, lease_seconds=330.0, finished=previous)
                previous = [message]
            else:
                ledger.begin(message, token, lease_seconds=330.0)
                ledger.finish([message])
        ledger.finish(previous)
        return (time.perf_counter() - started) / count * 1e6
    finally:
        harness.delete_ledger(group)


WARM_UP_MESSAGES = 50
"""Sent and handled before the capacity burst, in every end-to-end run."""


def ledger_check(in_flight: int, partitions: int = harness.PARTITIONS, repeats: int = 20) -> float:
    """Milliseconds one periodic ledger check takes in a completion-mode bridge with ``in_flight``
    messages in flight on each of ``partitions`` partitions, none finished (what a bridge at its
    in-flight bound asks the ledger once per commit interval; the answer grows with the messages in flight)."""
    group = harness.unique("check")
    ledger = ledger_for(group, url=None, broker_url=harness.BROKER_URL)
    tracking = CompletionTracking(ledger, timeouts={"bench.check": 3600.0})
    try:
        tracking.advance({("bench.check", p): 0 for p in range(partitions)})
        for p in range(partitions):
            messages = [Message(topic="bench.check", partition=p, offset=i, key=b"k", value=b'{"n": 1}') for i in range(in_flight)]
            for start in range(0, in_flight, 500):
                tracking.claim(messages[start : start + 500], new_token())
            tracking.dispatched(messages, time.monotonic())
        started = time.perf_counter()
        for _ in range(repeats):
            tracking.check(time.monotonic())
        return (time.perf_counter() - started) / repeats * 1000
    finally:
        harness.delete_ledger(group)


def end_to_end(
    burst: int, seconds: float, warmup: float = 1.0, pool: str = "prefork", commit_after: str = COMMIT_AFTER_PUBLISH,
    rate: float | None = None,
) -> dict[str, float | str]:
    """Capacity, then latency at half of it, through a bridge process and a worker of ``pool``.

    Capacity: after a few warm-up messages, a burst of ``burst`` messages from Kafka to handler
    start, with every process on the machine busy at once (which is what bounds latency). Latency: Kafka timestamp → handler start
    while producing at half that rate for ``seconds``; the first ``warmup`` seconds are left out
    (connections and first fetches). ``rate``: produce at this rate instead (to compare two
    configurations at the same load). Also Kafka timestamp → confirmed publish, and → the offset
    commit that covers the message (what completion tracking delays). The bridge runs with
    ``COMMIT_AFTER=commit_after`` and its default in-flight bound.
    """
    topic, queue, key, group = (harness.unique("latency") for _ in range(4))
    harness.fill_topic(topic, 0)
    env = {"KB_BENCH_LATENCY_KEY": key, "KB_BENCH_LATENCY_REDIS": harness.BROKER_URL, "KB_BENCH_TOPIC": topic}
    worker = harness.start_worker(pool, queue, **env)
    bridge = harness.start_bridge(topic, group, queue, KAFKABRIDGE_COMMIT_AFTER=commit_after, **env)
    broker = harness.broker()
    producer = Producer({"bootstrap.servers": harness.KAFKA, "linger.ms": 0})
    try:
        for i in range(WARM_UP_MESSAGES):  # connections, first fetches, scripts loaded: not part of the capacity
            producer.produce(topic, key=str(i).encode(), value=b'{"n": 1}')
        producer.flush(30)
        harness.wait_until(lambda: broker.llen(key) >= WARM_UP_MESSAGES, 60, "the warm-up messages", interval=0.01)
        broker.delete(key, f"{key}:published")

        started = time.perf_counter()
        for i in range(burst):
            producer.produce(topic, key=str(i).encode(), value=b'{"n": 1}')
            producer.poll(0)
        producer.flush(30)
        harness.wait_until(lambda: broker.llen(key) >= burst, 300, "the capacity burst", interval=0.01)
        capacity = burst / (time.perf_counter() - started)
        broker.delete(key, f"{key}:published")  # the commit samples are told apart by their Kafka timestamp

        rate = rate or capacity / 2
        total = int(rate * seconds)
        measured_from_ms = (time.time() + warmup) * 1000
        started = time.perf_counter()
        for i in tqdm(range(total), desc=f"latency @ {rate:.0f}/s ({pool}, {commit_after})", unit="msg", leave=False, mininterval=0.5):
            producer.produce(topic, key=str(i).encode(), value=b'{"n": 1}')
            producer.poll(0)
            delay = started + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.flush(30)
        harness.wait_until(lambda: broker.llen(key) >= total, 120, "every latency sample", interval=0.1)
        produced = WARM_UP_MESSAGES + burst + total
        harness.wait_until(lambda: broker.llen(f"{key}:committed") >= produced, 60, "every message's commit", interval=0.1)
        skip = int(rate * warmup)
        samples = sorted(float(v) for v in broker.lrange(key, skip, -1))
        published = sorted(float(v) for v in broker.lrange(f"{key}:published", skip, -1))
        committed = sorted(
            float(latency) for kafka_ms, latency in (entry.split() for entry in broker.lrange(f"{key}:committed", 0, -1))
            if float(kafka_ms) >= measured_from_ms
        )
        return {"pool": pool, "mode": commit_after, "capacity": capacity, "rate": rate, "samples": len(samples),
                "p50_ms": _percentile(samples, 0.50), "p99_ms": _percentile(samples, 0.99),
                "bridge_p50_ms": _percentile(published, 0.50), "bridge_p99_ms": _percentile(published, 0.99),
                "commit_p50_ms": _percentile(committed, 0.50), "commit_p99_ms": _percentile(committed, 0.99)}
    finally:
        bridge.stop()
        worker.stop()
        broker.delete(key, f"{key}:published", f"{key}:committed", queue)
        harness.delete_ledger(group)


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def bridge_memory(topic: str, count: int) -> list[tuple[int, int]]:
    """(messages committed, bridge RSS in bytes) samples over a long run; the Celery queue is emptied as it fills.

    Commit-after-publish, as in earlier reports: in completion mode nothing would ever finish here
    (the queue is thrown away), so the bridge would stop at its in-flight bound.
    """
    queue, group = harness.unique("rss"), harness.unique("rss")
    broker = harness.broker()
    bridge = harness.start_bridge(topic, group, queue, KAFKABRIDGE_COMMIT_AFTER=COMMIT_AFTER_PUBLISH)
    process = psutil.Process(bridge.popen.pid)
    samples: list[tuple[int, int]] = []
    try:
        with tqdm(total=count, desc="bridge RSS run", unit="msg", unit_scale=True, leave=False) as progress:
            done = 0
            while done < count:
                time.sleep(1.0)
                broker.delete(queue)
                now = harness.committed_total(group, topic)
                progress.update(now - done)
                done = now
                samples.append((done, process.memory_info().rss))
        return samples
    finally:
        bridge.popen.send_signal(signal.SIGTERM)
        bridge.stop()
        broker.delete(queue)
