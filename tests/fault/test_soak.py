"""The soak run, on demand only (``KB_SOAK=1 scripts/test tests/fault -m soak -v``): one long stream and
every kind of fault of the suite again and again, in turn, until the stream ends.

``KB_SOAK_N`` sets the number of messages (default 20,000); a fault lands every ``KB_SOAK_EVERY``
outcomes (default 1,000).
"""

from __future__ import annotations

import os
import random
import signal
from itertools import cycle
from typing import Callable

import pytest
from django.db import connection

from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig

pytestmark = pytest.mark.outage  # stops, wipes, freezes and kills Redis, Kafka and PostgreSQL: on a service set of its own (scripts/test's group "outage")

SOAK_N = int(os.environ.get("KB_SOAK_N", "20000"))
SOAK_EVERY = int(os.environ.get("KB_SOAK_EVERY", "1000"))


class Soak:
    """The processes of the soak run now (faults replace them)."""

    def __init__(self, rig: Rig, topic: str) -> None:
        self.rig, self.topic = rig, topic
        self.worker = rig.start_worker(CELERY_WORKER_PREFETCH_MULTIPLIER="4")
        self.bridge = rig.start_bridge(topic)

    def kill_bridge(self) -> None:
        self.bridge.signal(signal.SIGKILL)
        self.bridge.process.wait(10)
        self.bridge = self.rig.start_bridge(self.topic)

    def stop_bridge(self) -> None:
        self.bridge.signal(signal.SIGTERM)
        self.bridge.process.wait(60)
        self.bridge = self.rig.start_bridge(self.topic)

    def kill_pool_process(self) -> None:
        children = self.rig.pool_processes(self.worker)
        if children:
            os.kill(random.choice(children), signal.SIGKILL)

    def kill_worker(self) -> None:
        self.rig.kill_worker(self.worker)
        self.worker = self.rig.start_worker(CELERY_WORKER_PREFETCH_MULTIPLIER="4")

    def second_bridge(self) -> None:
        second = self.rig.start_bridge(self.topic)
        second.wait_for_log(rf"assigned {self.topic}\[", timeout=60)  # the rebalance is the fault: it leaves again at once
        second.signal(signal.SIGTERM)
        second.process.wait(60)

    def lose_redis(self) -> None:
        with support.outage("redis", lose_data=True):
            pass

    def freeze_redis(self) -> None:
        with support.frozen("redis"):
            support.holds_for(lambda: self.bridge.alive(), seconds=8, what="the bridge alive while Redis is frozen")

    def kill_kafka(self) -> None:
        with support.killed("kafka"):
            pass

    def stop_database(self) -> None:
        connection.close()
        with support.outage("postgres"):
            support.holds_for(lambda: self.worker.alive(), seconds=5, what="the worker alive while the database is down")


@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
def test_a_long_stream_survives_every_fault_again_and_again(rig: Rig, report) -> None:
    topic = rig.topic("fault")
    soak = Soak(rig, topic)
    faults: list[Callable[[], None]] = [
        soak.kill_bridge, soak.kill_pool_process, soak.lose_redis, soak.stop_bridge, soak.kill_worker,
        soak.freeze_redis, soak.second_bridge, soak.kill_kafka, soak.stop_database,
    ]
    run = rig.stream(topic, n=SOAK_N, rate=300.0, lead=1000, max_attempts=plan.POLICY.max_attempts)
    injected: list[str] = []
    for fault in cycle(faults):
        target = len(run.finished_ids()) + SOAK_EVERY
        if target >= SOAK_N:
            break
        support.wait_until(lambda: len(run.finished_ids()) >= target, timeout=600, what=f"{SOAK_EVERY} more outcomes")
        fault()
        injected.append(fault.__name__)

    figures = rig.settle(run, timeout=900)
    figures.notes["faults"] = len(injected)
    report("soak", f"A stream of {SOAK_N} messages through {len(injected)} faults of every kind, in turn",
           ", ".join(sorted(set(injected))), figures)
    figures.assert_sound()
