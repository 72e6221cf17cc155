"""Plumbing shared by the benchmark scenarios: services, worker and bridge processes, topics, statistics."""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from uuid import uuid4

import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
BROKER_URL = os.environ.get("KB_BENCH_BROKER_URL", "redis://127.0.0.1:6379/3")
LOG_DIR = ROOT / ".services" / "logs" / "bench"
PARTITIONS = 3


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:8]}"


def broker() -> redis.Redis:
    return redis.Redis.from_url(BROKER_URL)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


CREATED_TOPICS: list[str] = []


def fill_topic(topic: str, count: int, value_size: int = 100, headers: Callable[[int], list[tuple[str, bytes]]] | None = None) -> None:
    """A topic of ``count`` small JSON messages spread over the partitions (deleted by :func:`delete_topics`);
    ``headers(i)`` gives the i-th message's headers (none by default)."""
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(30)
    CREATED_TOPICS.append(topic)
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 20, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000})
    padding = "x" * max(0, value_size - 30)
    for i in tqdm(range(count), desc=f"fill {topic}", unit="msg", unit_scale=True, leave=False, mininterval=0.5):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=f'{{"n": {i}, "p": "{padding}"}}'.encode(),
                                 headers=headers(i) if headers else None)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "benchmark messages did not all reach Kafka"


def delete_topics() -> None:
    """Remove every topic this run created, so benchmark data does not pile up on the broker's disk."""
    if CREATED_TOPICS:
        admin = AdminClient({"bootstrap.servers": KAFKA})  # must outlive its futures
        for future in admin.delete_topics(CREATED_TOPICS).values():
            future.result(30)
        CREATED_TOPICS.clear()


LEDGER_PREFIX = "kafkabridge:completion"


def delete_ledger(group: str) -> None:
    """Remove the completion ledger keys of consumer group ``group`` (they would otherwise live for a week)."""
    client = broker()
    keys = list(client.scan_iter(match=f"{LEDGER_PREFIX}:{{{group}|*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def committed_total(group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return sum(max(tp.offset, 0) for tp in found)
    finally:
        consumer.close()


def process_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "CELERY_BROKER_URL": BROKER_URL,
            "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Process:
    """A worker or bridge started by a benchmark; always stopped by :meth:`stop`."""

    argv: list[str]
    env: dict[str, str]
    name: str
    log_path: Path = field(init=False)
    popen: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{self.name}.log"
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    def wait_for_log(self, pattern: str, timeout: float = 60) -> None:
        regex = re.compile(pattern)

        def seen() -> bool:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            return bool(regex.search(self.log_path.read_text(errors="replace")))

        wait_until(seen, timeout, f"{self.name} to log {pattern!r}", interval=0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_worker(pool: str, queue: str, **env: str) -> Process:
    name = unique(f"worker-{pool}")
    concurrency = "1" if pool == "solo" else "2"
    worker = Process(
        [str(BIN / "celery"), "-A", "dashboard", "worker", "-l", "info", "-P", pool, "-c", concurrency, "-Q", queue,
         "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        process_env(**env), name,
    )
    worker.wait_for_log(r"ready\.", timeout=60)
    return worker


def start_bridge(topic: str, group: str, queue: str, **env: str) -> Process:
    bridge = Process([sys.executable, "manage.py", "runbridge", "--topic", topic, "--group-id", group],
                     process_env(**{**env, "KB_BENCH_TOPIC": topic, "KB_BENCH_QUEUE": queue}), unique("bridge"))
    bridge.wait_for_log(r"assigned", timeout=60)
    return bridge


@dataclass(frozen=True)
class Summary:
    """Median of several runs, with their spread (min and max)."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: list[float]) -> Summary:
        return cls(statistics.median(runs), min(runs), max(runs), tuple(runs))

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        return (self.high - self.low) / self.median if self.median else 0.0
