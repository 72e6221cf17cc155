"""Each benchmark measures one thing and returns messages per second (or milliseconds, or bytes).

All of them run against the same local services in the same command, so their ratios mean something
on a shared, noisy machine even when the absolute numbers do not.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from typing import Sequence

import psutil
from confluent_kafka import Consumer, Producer
from tqdm import tqdm

from kafkabridge import Hooks, Message, build_bridge, runtime
from kafkabridge.hooks import HookDispatcher
from kafkabridge.consumer.publisher import CeleryPublisher
from kafkabridge.registry import Route
from kafkabridge.retry_policy import RetryPolicy

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

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        if not self.started:
            self.started, self.first = time.perf_counter(), len(messages)
        self.published += len(messages)
        if self.published >= self.target:
            self.finished = time.perf_counter()
            self.bridge.stop()  # type: ignore[attr-defined]


def bridge_throughput(app: object, topic: str, count: int) -> float:
    """Kafka → Celery broker through the bridge, with at-least-once commits, in this process."""
    queue = harness.unique("bridge")
    counter = _PublishCounter(count)
    settings = replace(runtime.current().settings, group_id=harness.unique("bridge"), queue=queue)
    bridge = build_bridge(app, settings, topics=[topic], hooks=HookDispatcher([counter]))  # type: ignore[arg-type]
    counter.bridge = bridge
    try:
        bridge.run()
    finally:
        harness.broker().delete(queue)
    return (counter.published - counter.first) / (counter.finished - counter.started)


def _fill_queue(app: object, queue: str, task_name: str, count: int) -> None:
    route = Route(topic="bench.fill", task_name=task_name, retry_policy=RetryPolicy(), time_limit=None)
    publisher = CeleryPublisher(app, {"bench.fill": route}, queue=queue)  # type: ignore[arg-type]
    messages = [Message(topic="bench.fill", partition=0, offset=i, key=b"k", value=b'{"n": 1}') for i in range(count)]
    for start in range(0, count, 1000):
        publisher.publish(messages[start : start + 1000])


def worker_drain(app: object, task_name: str, pool: str, count: int) -> float:
    """B5 / handler path: a full queue of ``task_name`` drained by a stock ``celery worker``."""
    queue, idle = harness.unique("drain"), harness.unique("idle")
    broker = harness.broker()
    worker = harness.start_worker(pool, idle)
    try:
        _fill_queue(app, queue, task_name, count)
        worker_name = f"{worker.name}@{os.uname().nodename}"
        started = time.perf_counter()
        app.control.add_consumer(queue, destination=[worker_name], reply=True, timeout=10)  # type: ignore[attr-defined]
        harness.wait_until(lambda: broker.llen(queue) == 0 and broker.hlen("unacked") == 0, 600, f"{queue} to drain")
        return count / (time.perf_counter() - started)
    finally:
        worker.stop()
        broker.delete(queue)


def end_to_end(burst: int, seconds: float, warmup: float = 1.0, pool: str = "prefork") -> dict[str, float]:
    """Capacity, then latency at half of it, through a bridge process and a prefork worker.

    Capacity: a burst of ``burst`` messages from Kafka to handler start, with every process on the
    machine busy at once (which is what bounds latency). Latency: Kafka timestamp → handler start
    while producing at half that rate for ``seconds``; the first ``warmup`` seconds are left out
    (connections and first fetches).
    """
    topic, queue, key = harness.unique("latency"), harness.unique("latency"), harness.unique("latency")
    harness.fill_topic(topic, 0)
    env = {"KB_BENCH_LATENCY_KEY": key, "KB_BENCH_LATENCY_REDIS": harness.BROKER_URL, "KB_BENCH_TOPIC": topic}
    worker = harness.start_worker(pool, queue, **env)
    bridge = harness.start_bridge(topic, harness.unique("latency"), queue, **env)
    broker = harness.broker()
    producer = Producer({"bootstrap.servers": harness.KAFKA, "linger.ms": 0})
    try:
        started = time.perf_counter()
        for i in range(burst):
            producer.produce(topic, key=str(i).encode(), value=b'{"n": 1}')
            producer.poll(0)
        producer.flush(30)
        harness.wait_until(lambda: broker.llen(key) >= burst, 300, "the capacity burst", interval=0.01)
        capacity = burst / (time.perf_counter() - started)
        broker.delete(key, f"{key}:published")

        rate = capacity / 2
        total = int(rate * seconds)
        started = time.perf_counter()
        for i in tqdm(range(total), desc=f"latency @ {rate:.0f}/s", unit="msg", leave=False, mininterval=0.5):
            producer.produce(topic, key=str(i).encode(), value=b'{"n": 1}')
            producer.poll(0)
            delay = started + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.flush(30)
        harness.wait_until(lambda: broker.llen(key) >= total, 120, "every latency sample", interval=0.1)
        skip = int(rate * warmup)
        samples = sorted(float(v) for v in broker.lrange(key, skip, -1))
        published = sorted(float(v) for v in broker.lrange(f"{key}:published", skip, -1))
        return {"pool": pool, "capacity": capacity, "rate": rate, "samples": len(samples),
                "p50_ms": _percentile(samples, 0.50), "p99_ms": _percentile(samples, 0.99),
                "bridge_p50_ms": _percentile(published, 0.50), "bridge_p99_ms": _percentile(published, 0.99)}
    finally:
        bridge.stop()
        worker.stop()
        broker.delete(key, f"{key}:published", queue)


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def bridge_memory(topic: str, count: int) -> list[tuple[int, int]]:
    """(messages committed, bridge RSS in bytes) samples over a long run; the Celery queue is emptied as it fills."""
    queue, group = harness.unique("rss"), harness.unique("rss")
    broker = harness.broker()
    bridge = harness.start_bridge(topic, group, queue)
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
