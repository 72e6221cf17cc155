"""Helpers for integration tests: bounded waits, real worker and bridge processes, Kafka topics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class ServiceProcess:
    """A worker or bridge process of the test, with its log in a file."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, *, timeout: float) -> None:
        regex = re.compile(pattern)

        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode} before logging {pattern!r}:\n{self.tail()}")
            return bool(regex.search(self.log()))

        wait_until(seen, timeout=timeout, what=f"{self.name} to log {pattern!r}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def process_env(ns: str) -> dict[str, str]:
    return {**os.environ, "KBTEST_NS": ns, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}


def start_worker(ns: str, log_dir: Path, concurrency: int = 2) -> ServiceProcess:
    worker = ServiceProcess(
        "worker",
        [str(BIN / "celery"), "-A", "dashboard", "worker", "-l", "info", "-P", "prefork", "-c", str(concurrency),
         "-Q", ns, "-n", f"{ns}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        process_env(ns),
        log_dir / f"worker-{ns}.log",
    )
    worker.wait_for_log(r"ready\.", timeout=60)
    return worker


def start_bridge(ns: str, topics: Iterable[str], log_dir: Path, *, group_id: str | None = None) -> ServiceProcess:
    argv = [sys.executable, "manage.py", "runbridge", "--group-id", group_id or ns]
    for topic in topics:
        argv += ["--topic", topic]
    index = len(list(log_dir.glob(f"bridge-{ns}-*.log")))
    return ServiceProcess("bridge", argv, process_env(ns), log_dir / f"bridge-{ns}-{index}.log")


def create_topics(admin: AdminClient, names: Iterable[str], partitions: int = 3) -> None:
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names])
    for future in futures.values():
        future.result(timeout=30)
    for name in names:
        wait_until(lambda: _has_leaders(admin, name, partitions), timeout=30, what=f"topic {name} to be ready")


def _has_leaders(admin: AdminClient, name: str, partitions: int) -> bool:
    topic = admin.list_topics(name, timeout=5).topics.get(name)
    return bool(topic and topic.error is None and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values()))


def producer() -> Producer:
    return Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "linger.ms": 5, "message.max.bytes": 10_000_000})


def produce(topic: str, records: Iterable[tuple[bytes | None, bytes | None, list | None]], partition: int | None = None) -> None:
    """Produce (key, value, headers) records and wait until Kafka has every one."""
    errors: list[object] = []
    out = producer()
    for key, value, headers in records:
        options = {"partition": partition} if partition is not None else {}
        out.produce(topic, key=key, value=value, headers=headers,
                    on_delivery=lambda err, _msg: err and errors.append(err), **options)
        out.poll(0)
    assert out.flush(30) == 0, "not every test message reached Kafka"
    assert not errors, f"Kafka refused test messages: {errors[:3]}"


def committed_offsets(group_id: str, topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group_id, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def end_offsets(topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": "kbtest-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()
