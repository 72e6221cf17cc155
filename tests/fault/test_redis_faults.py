"""Redis (the Celery broker and the completion ledger) loses its data or freezes mid-stream: nothing is lost.

Scenarios 5 (restarted without its data: queued tasks and the ledger are gone) and 6 (frozen with
SIGSTOP for longer than the Kafka consumer session timeout, then resumed).
"""

from __future__ import annotations

import pytest

from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig

pytestmark = pytest.mark.outage  # restarts Redis without its data, and freezes it: on a service set of its own (scripts/test's group "outage")

N = 200
RATE = 100.0
MID_STREAM = N // 6
FREEZE = 10.0
"""Seconds Redis stays frozen: longer than the bridge's session.timeout.ms (6 s in tests/settings.py)."""


def test_redis_restarted_without_its_data_mid_stream_loses_nothing(rig: Rig, report) -> None:
    # Given a stream under way: tasks queued in Redis, outcomes and leases in its completion ledger
    topic = rig.topic("fault")
    rig.start_worker()
    bridge = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When Redis stops, loses its data files and starts empty
    run.mark_fault()
    with support.outage("redis", lose_data=True):
        pass  # down, its files deleted, and up again at once: a restart without its data
    run.mark_restored()

    # Then the bridge notices the lost ledger and dispatches every unfinished message again; nothing is lost
    figures = rig.settle(run, timeout=180)
    report(5, "Redis restarted without its data mid-stream loses nothing", "Redis stopped, data files deleted, started", figures)
    figures.assert_sound()  # duplicates are expected here: the ledger that deduplicates was lost too
    assert "the completion ledger lost" in bridge.log()


def test_redis_frozen_longer_than_the_session_timeout_loses_nothing(rig: Rig, report) -> None:
    # Given a stream under way
    topic = rig.topic("fault")
    rig.start_worker()
    bridge = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When Redis is frozen (SIGSTOP) for longer than the consumer session timeout, then resumed
    run.mark_fault()
    with support.frozen("redis"):
        frozen_at = len(run.finished_ids())
        support.holds_for(lambda: len(run.finished_ids()) <= frozen_at + 2 * 2, seconds=FREEZE,
                          what="no progress while Redis is frozen (at most the runs in progress end)")
    run.mark_restored()

    # Then the stream goes on where it stopped; nothing is lost
    figures = rig.settle(run, timeout=180)
    report(6, "Redis frozen (SIGSTOP) longer than the session timeout, then resumed, loses nothing",
           f"Redis SIGSTOP for {FREEZE:.0f}s, SIGCONT", figures)
    figures.assert_sound()
    assert bridge.alive()
