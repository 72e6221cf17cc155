"""Helpers for integration tests: bounded waits, real worker and bridge processes, Kafka topics, outages."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVICES = ROOT / "scripts" / "services"
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# tests/settings.py puts the defaults of these into the environment; the fallbacks are the same defaults.
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kafkabridge_test")
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
KAFKA_CLUSTER = os.environ.get("KAFKA_CLUSTER_BOOTSTRAP_SERVERS", "127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194")
"""The on-demand three-broker cluster (``scripts/services up kafka-cluster``); its ports are consecutive."""

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


def holds_for(predicate: Callable[[], T], *, seconds: float, what: str, interval: float = 0.2) -> T:
    """Check ``predicate`` again and again for ``seconds``: it must hold every time (catches late periodic work)."""
    started = time.monotonic()
    while True:
        result = predicate()
        if not result:
            raise AssertionError(f"{what} stopped holding after {time.monotonic() - started:.1f}s (got {result!r})")
        if time.monotonic() - started >= seconds:
            return result
        time.sleep(interval)


SETTLE_SECONDS = 3.0
"""How long a finished outcome is watched for late work: longer than the test handlers' longest retry
countdown (0.5 s for those that end as dead letters) plus scheduling slack."""


def outcome_of(ns: str, topic: str) -> tuple[list[tuple], dict[str, int], dict[str, int]]:
    """What happened to the messages of ``topic`` so far: its dead-letter rows (offset, attempts, status,
    last failure), how often a handler that records attempts ran on each message, how often each was handled."""
    from kafkabridge.contrib.django.models import FailedMessage
    from tests.app import recorder

    rows = sorted(FailedMessage.objects.filter(source_topic=topic).values_list("source_offset", "attempts", "status", "last_failed_at"))
    client = recorder.client()
    runs = {k.decode().split(":attempts:", 1)[1]: client.llen(k) for k in client.scan_iter(recorder.key(f"attempts:{topic}/*", ns), count=1000)}
    handled = {k: v for k, v in recorder.handled_counts(ns).items() if k.startswith(f"{topic}/")}
    return rows, runs, handled


def settled(ns: str, topic: str, seconds: float = SETTLE_SECONDS) -> tuple[list[tuple], dict[str, int], dict[str, int]]:
    """Once a test saw its outcome: nothing more happens to ``topic``'s messages for ``seconds`` (no late
    retry, no second dead letter, no update of a row, no second handling). Returns that outcome."""
    first = outcome_of(ns, topic)

    def unchanged() -> bool:
        now = outcome_of(ns, topic)
        assert now == first, f"{topic} changed after its outcome was seen:\n  {first}\n→ {now}"
        return True

    holds_for(unchanged, seconds=seconds, what=f"the outcome of {topic}")
    return first


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


def process_env(ns: str, *, settings: str = "tests.settings", extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker or bridge process: this test's namespace, the Django ``settings``
    module (tests/fault uses its own), and ``extra`` variables."""
    return {**os.environ, "KBTEST_NS": ns, "DJANGO_SETTINGS_MODULE": settings, "PYTHONUNBUFFERED": "1", **(extra or {})}


def start_worker(ns: str, log_dir: Path, concurrency: int = 2, *, env: Mapping[str, str] | None = None) -> ServiceProcess:
    """A prefork worker on the queue ``ns``; ``env`` replaces :func:`process_env` (each start logs to its own file)."""
    index = len(list(log_dir.glob(f"worker-{ns}*.log")))
    worker = ServiceProcess(
        "worker",
        [str(BIN / "celery"), "-A", "dashboard", "worker", "-l", "info", "-P", "prefork", "-c", str(concurrency),
         "-Q", ns, "-n", f"{ns}-{index}@%h" if index else f"{ns}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        dict(env) if env is not None else process_env(ns),
        log_dir / (f"worker-{ns}-{index}.log" if index else f"worker-{ns}.log"),
    )
    worker.wait_for_log(r"ready\.", timeout=60)
    return worker


def start_bridge(
    ns: str, topics: Iterable[str], log_dir: Path, *, group_id: str | None = None, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """A ``runbridge`` process for ``topics``; ``env`` replaces :func:`process_env`."""
    argv = [sys.executable, "manage.py", "runbridge", "--group-id", group_id or ns]
    for topic in topics:
        argv += ["--topic", topic]
    index = len(list(log_dir.glob(f"bridge-{ns}-*.log")))
    return ServiceProcess("bridge", argv, dict(env) if env is not None else process_env(ns), log_dir / f"bridge-{ns}-{index}.log")


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


def produce_with_kcat(topic: str, partition: int, key: bytes, value: bytes, headers: Sequence[tuple[bytes, bytes]]) -> None:
    """Produce one record whose header names are raw bytes (confluent-kafka writes only str names), with kcat."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is needed to write such records: apt-get install -y kcat (scripts/services up installs it)"
    assert b"\n" not in value and all(b"=" not in name for name, _ in headers), "kcat reads one line, and splits headers at '='"
    argv = [kcat.encode(), b"-P", b"-b", KAFKA.encode(), b"-t", topic.encode(), b"-p", str(partition).encode(), b"-k", key]
    for name, data in headers:
        argv += [b"-H", name + b"=" + data]
    result = subprocess.run(argv, input=value, capture_output=True, timeout=60)
    assert result.returncode == 0, f"kcat failed: {result.stderr!r}"


def committed_offsets(group_id: str, topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group_id, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def read_topic(topic: str, partitions: int = 3, timeout: float = 60) -> dict[str, tuple[bytes | None, bytes | None]]:
    """Everything in ``topic`` now, read straight from Kafka (no group): message id → (key, value)."""
    ends = end_offsets(topic, partitions)
    found: dict[str, tuple[bytes | None, bytes | None]] = {}
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": "kbtest-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while len(found) < sum(ends.values()):
            assert time.monotonic() < deadline, f"read {len(found)} of {sum(ends.values())} records of {topic}"
            for raw in consumer.consume(500, 1.0):
                if raw.error() is None:
                    found[f"{raw.topic()}/{raw.partition()}@{raw.offset()}"] = (raw.key(), raw.value())
    finally:
        consumer.close()
    return found


def end_offsets(topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": "kbtest-watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


# -- outages: stop and start the services this run uses ------------------------------------------

_PORTS = {  # service → (its KB_* port variable of scripts/services, the port the suite uses)
    "redis": ("KB_REDIS_PORT", lambda: urlsplit(BROKER_URL).port or 6379),
    "postgres": ("KB_PG_PORT", lambda: urlsplit(DATABASE_URL).port or 5432),
    "kafka": ("KB_KAFKA_PORT", lambda: int(KAFKA.split(",")[0].rsplit(":", 1)[1])),
    "kafka-cluster": ("KB_KAFKA_CLUSTER_PORT", lambda: int(KAFKA_CLUSTER.split(",")[0].rsplit(":", 1)[1])),
}


@contextmanager
def outage(service: str, *, lose_data: bool = False) -> Iterator[None]:
    """``service`` ("redis": the Celery broker, "postgres" or "kafka") is down inside the block, up again after it.

    ``lose_data`` (Redis only): it comes back without its data, as after losing its disk.

    A test that uses it carries the ``outage`` marker: scripts/test runs those on services of their own,
    the second set of ``scripts/outages.env``, which sets these variables (and scripts/services' KB_*)::

        export KB_STATE_DIR=$PWD/.services-outages KB_KAFKA_PORT=19092 KB_KAFKA_CONTROLLER_PORT=19093 KB_REDIS_PORT=16379 KB_PG_PORT=15432
        scripts/services up
        KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 DATABASE_URL=postgres://postgres@127.0.0.1:15432/kafkabridge_test \\
        CELERY_BROKER_URL=redis://127.0.0.1:16379/1 KBTEST_REDIS_URL=redis://127.0.0.1:16379/2 \\
        .venv/bin/python -m pytest tests/integration/test_broker_outage.py

    (tests/fault also starts the three-broker cluster: ``KB_KAFKA_CLUSTER_PORT=19192`` and
    ``KAFKA_CLUSTER_BOOTSTRAP_SERVERS=127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194``.) In short:
    ``KB_TEST_GROUP=outage scripts/test tests/integration/test_broker_outage.py``.
    """
    control_service("down", service)
    try:
        if lose_data:
            control_service("wipe", service)
        yield
    finally:
        control_service("up", service)


@contextmanager
def killed(service: str) -> Iterator[None]:
    """``service`` ("kafka", "redis" or "kafka-cluster/N") dies by kill -9 at the start of the block and is
    started again after it, whatever happened inside."""
    control_service("kill", service)
    try:
        yield
    finally:
        control_service("up", service.split("/")[0])


@contextmanager
def frozen(service: str) -> Iterator[None]:
    """``service`` ("redis", "kafka" or "kafka-cluster/N") is stopped by SIGSTOP inside the block and resumed after it."""
    control_service("freeze", service)
    try:
        yield
    finally:
        control_service("thaw", service)


SHARED_SERVICES = "KB_SHARED_SERVICES"
"""Set to 1 (by scripts/test, for its group "shared") when this run shares its services with a concurrent run:
:func:`control_service` then refuses to act, so that a test that stops a service without the ``outage``
marker fails at once instead of breaking the tests of the other run."""


def control_service(action: str, service: str) -> None:
    """``scripts/services <action> <service>`` on the instance this run uses (its KB_* variables pass through).

    Refuses when the run shares its services with a concurrent run (KB_SHARED_SERVICES=1), and when
    KB_*_PORT names another port than the suite's URLs, so a test never stops a service that it does
    not use (another engineer's, for example), and checks that the port really closed or opened.
    ``service`` may name one node of the cluster: ``kafka-cluster/2``.
    """
    if os.environ.get(SHARED_SERVICES) == "1":
        raise AssertionError(
            f"refusing to {action} {service}: this run shares its services with a concurrent run ({SHARED_SERVICES}=1): "
            "mark the test `outage` (pytestmark = pytest.mark.outage, or @pytest.mark.outage), and scripts/test runs it "
            "on the outage group's services of its own")
    name, _, node = service.partition("/")
    variable, port_of = _PORTS[name]
    port = port_of()
    if os.environ.get(variable, str(port)) != str(port):
        raise AssertionError(f"{variable}={os.environ[variable]} but the suite uses port {port} for {name}: refusing to touch it")
    result = subprocess.run([str(SERVICES), action, service], env={**os.environ, variable: str(port)}, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"scripts/services {action} {service} failed:\n{result.stdout}{result.stderr}"
    if action in ("up", "down", "kill"):
        ports = [port + int(node) - 1] if node else [port + i for i in range(3)] if name == "kafka-cluster" else [port]
        wait_until(lambda: all(port_open(p) == (action == "up") for p in ports), timeout=60,
                   what=f"{service} on port(s) {ports} to be {action} (is KB_STATE_DIR the one that started it?)")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (a prefork worker's pool processes), from /proc."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
