"""The checker's baseline: without a fault, every message is handled or dead-lettered once and committed to the end."""

from __future__ import annotations

from tests.fault.app import plan
from tests.fault.rig import Rig

N = 200
RATE = 100.0


def test_a_stream_without_faults_is_handled_once_and_committed_to_the_end(rig: Rig, report) -> None:
    topic = rig.topic("fault")
    rig.start_worker(CELERY_WORKER_PREFETCH_MULTIPLIER="4")
    rig.start_bridge(topic)

    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    figures = rig.settle(run)

    report(0, "Without a fault, every message is handled or dead-lettered once", "none", figures)
    figures.assert_sound(duplicates=0)
    assert figures.sent == N
    assert figures.dead_lettered == sum(plan.dead_lettered(m) for m in run.producing.ids())
