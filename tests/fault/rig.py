"""What a fault scenario stands on: its topic, worker and bridge processes on the fault settings, and
its stream (a :class:`~tests.fault.checker.Run`). Everything it started is stopped at the end, killed
or not, including pool processes a killed worker left behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests import support
from tests.fault.app import journal as journal_module
from tests.fault.checker import Figures, Run

SETTINGS = "tests.fault.settings"
LEAD = 60
"""The producer stays at most this many messages ahead of the outcomes: a short stream (200 messages)
is still being produced when its fault lands, however long the bridge takes to join its group."""


class Rig:
    def __init__(self, ns: str, logs: Path, kafka_admin: AdminClient) -> None:
        self.ns, self.logs = ns, logs
        self.journal = logs / "journal.jsonl"
        self.kafka_admin = kafka_admin
        self.workers: list[support.ServiceProcess] = []
        self.bridges: list[support.ServiceProcess] = []
        self._pool_processes: set[int] = set()
        self.run: Run | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return support.process_env(self.ns, settings=SETTINGS, extra={journal_module.VARIABLE: str(self.journal), **extra})

    # -- Kafka -------------------------------------------------------------------------------------

    def topic(self, kind: str, *, admin: AdminClient | None = None, replication_factor: int = 1) -> str:
        """This test's topic of the ``kind`` handler (fault, slow, crash), created with three partitions."""
        name = f"{self.ns}.{kind}"
        admin = self.kafka_admin if admin is None else admin  # not `or`: an idle AdminClient is falsy (len 0)
        config = {"min.insync.replicas": "2"} if replication_factor > 1 else {}
        topic = NewTopic(name, 3, replication_factor, config=config)
        support.wait_until(lambda: _created(admin, topic), timeout=60, what=f"topic {name} to be created")
        support.wait_until(lambda: _has_leaders(admin, name), timeout=60, what=f"topic {name} to be ready")
        return name

    # -- processes ---------------------------------------------------------------------------------

    def start_worker(self, concurrency: int = 2, **env: str) -> support.ServiceProcess:
        worker = support.start_worker(self.ns, self.logs, concurrency, env=self.env(**env))
        self.workers.append(worker)
        self.pool_processes(worker)
        return worker

    def start_bridge(self, topic: str, **env: str) -> support.ServiceProcess:
        bridge = support.start_bridge(self.ns, [topic], self.logs, env=self.env(**env))
        self.bridges.append(bridge)
        return bridge

    def pool_processes(self, worker: support.ServiceProcess) -> list[int]:
        """The worker's pool processes now (remembered, so that they are stopped even if the worker is killed)."""
        children = support.child_pids(worker.process.pid)
        self._pool_processes.update(children)
        return children

    def kill_worker(self, worker: support.ServiceProcess) -> None:
        """kill -9 a worker's main process; its pool processes are left to notice on their own."""
        self.pool_processes(worker)
        worker.signal(signal.SIGKILL)
        worker.process.wait(30)

    def stop_all(self) -> None:
        """SIGTERM to every process at once (each then gets up to 30 s before kill -9), then the orphans."""
        for worker in self.workers:
            if worker.alive():
                self.pool_processes(worker)
        for process in [*self.bridges, *self.workers]:
            if process.alive():
                process.signal(signal.SIGTERM)
        for process in [*self.bridges, *self.workers]:
            process.stop()
        for pid in self._pool_processes:  # orphans of a killed worker: ours, by pid, still a celery process
            try:
                if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    # -- the stream --------------------------------------------------------------------------------

    def stream(self, topic: str, *, n: int, rate: float, max_attempts: int, lead: int = LEAD, bootstrap: str = support.KAFKA) -> Run:
        """Start producing ``n`` messages to ``topic`` (at most ``lead`` ahead of the outcomes) and watching commits."""
        self.run = Run(topic=topic, group=self.ns, journal=self.journal, n=n, rate=rate, lead=lead,
                       max_attempts=max_attempts, bootstrap=bootstrap)
        self.run.start()
        return self.run

    def settle(self, run: Run, *, timeout: float = 120) -> Figures:
        return run.settle(timeout=timeout, dead_letter_rows=dead_letter_rows(run.topic))


def dead_letter_rows(topic: str) -> dict[str, float]:
    """Message id → time its dead letter was first saved, from the FailedMessage table."""
    from kafkabridge.contrib.django.models import FailedMessage

    rows = FailedMessage.objects.filter(source_topic=topic).values_list("key_text", "created_at")
    return {key: created.timestamp() for key, created in rows}


def _created(admin: AdminClient, topic: NewTopic) -> bool:
    """Create ``topic``; False while the controller does not count enough brokers yet (a cluster just started)."""
    try:
        admin.create_topics([topic])[topic.topic].result(timeout=30)
    except KafkaException as error:
        if error.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR:
            return False
        raise
    return True


def _has_leaders(admin: AdminClient, name: str) -> bool:
    topic = admin.list_topics(name, timeout=5).topics.get(name)
    return bool(topic and topic.error is None and len(topic.partitions) == 3
                and all(p.leader >= 0 and len(p.isrs) == len(p.replicas) for p in topic.partitions.values()))

