"""The bridge dies, stops or shares its partitions mid-stream: nothing is lost, commits stay behind unfinished work.

Scenarios 1 (kill -9 between publish and commit), 2 (SIGTERM: zero duplicates), 8 (a second
bridge joins and leaves: rebalances, zero duplicates) and 8b (the same while the first bridge holds
its partitions paused at the in-flight bound).
"""

from __future__ import annotations

import signal

import redis

from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig

N = 200
RATE = 100.0
MID_STREAM = N // 6
"""Outcomes after which the fault lands: the producer is still going."""


def uncommitted(rig: Rig, topic: str) -> list[str]:
    """Acknowledged messages at or after their partition's committed offset: read again by the next owner."""
    assert rig.run is not None
    committed = support.committed_offsets(rig.ns, topic)
    return [m for m, ack in rig.run.producing.acked.items() if ack.offset >= max(committed.get(ack.partition, 0), 0)]


def test_a_bridge_killed_between_publish_and_commit_loses_nothing(rig: Rig, report) -> None:
    # Given a stream under way, with published messages whose outcome is not committed yet
    topic = rig.topic("fault")
    rig.start_worker()
    bridge = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When the bridge is killed with kill -9 and another one takes over
    run.mark_fault()
    bridge.signal(signal.SIGKILL)
    bridge.process.wait(10)
    read_again = uncommitted(rig, topic)
    assert read_again, "the kill must land while published work is uncommitted"
    rig.start_bridge(topic)
    run.mark_restored()

    # Then every message reaches its outcome; only messages uncommitted at the kill may run twice
    figures = rig.settle(run)
    figures.notes["uncommitted_at_kill"] = len(read_again)
    report(1, "kill -9 of the bridge between publish and commit loses nothing", "bridge kill -9, restarted", figures)
    figures.assert_sound(duplicates=len(read_again))


def test_a_bridge_stopped_with_sigterm_loses_nothing_and_duplicates_nothing(rig: Rig, report) -> None:
    # Given a stream under way
    topic = rig.topic("fault")
    rig.start_worker()
    bridge = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When the bridge is stopped with SIGTERM, and another one starts once it is gone
    run.mark_fault()
    bridge.signal(signal.SIGTERM)
    assert bridge.process.wait(60) == 0
    rig.start_bridge(topic)
    run.mark_restored()

    # Then nothing is lost and no handler ran twice
    figures = rig.settle(run)
    report(2, "SIGTERM of the bridge loses nothing and duplicates nothing", "bridge SIGTERM, restarted", figures)
    figures.assert_sound(duplicates=0)
    assert "bridge closed" in bridge.log()


def test_a_second_bridge_joining_and_leaving_loses_nothing_and_duplicates_nothing(rig: Rig, report) -> None:
    # Given a stream under way with one bridge
    topic = rig.topic("fault")
    rig.start_worker()
    first = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When a second bridge joins (partitions move to it), then leaves with SIGTERM (they move back)
    run.mark_fault()
    # The stream goes on while the second bridge starts and joins, but its last N // 10 messages wait for the join:
    # they come after it however long the join takes (on a busy machine the first bridge could finish the stream alone).
    run.producing.hold_from(N - N // 10)
    second = rig.start_bridge(topic)
    second.wait_for_log(rf"assigned {topic}\[", timeout=60)
    first.wait_for_log(r"revoked", timeout=60)
    joined = len(run.finished_ids())
    run.producing.release()
    support.wait_until(lambda: len(run.finished_ids()) >= joined + N // 10, timeout=60, what="both bridges to make progress")
    second.signal(signal.SIGTERM)
    assert second.process.wait(60) == 0
    run.mark_restored()

    # Then nothing is lost and no handler ran twice across both rebalances
    figures = rig.settle(run)
    report(8, "A second bridge joining and leaving (two rebalances) loses nothing and duplicates nothing",
           "second bridge joins, then SIGTERM", figures)
    figures.assert_sound(duplicates=0)
    assert first.alive()


BOUND = 20
"""MAX_IN_FLIGHT of scenario 8b: every partition is held (paused) once this many of its messages are queued."""


def queued(ns: str) -> int:
    return redis.Redis.from_url(support.BROKER_URL).llen(ns)


def test_partitions_paused_at_the_in_flight_bound_that_move_away_and_back_are_consumed_again(rig: Rig, report) -> None:
    # Given a bridge whose partitions are all held at the in-flight bound (no worker runs yet)
    topic = rig.topic("fault")
    first = rig.start_bridge(topic, KBFAULT_MAX_IN_FLIGHT=str(BOUND), KBFAULT_SHUTDOWN_TIMEOUT="2")
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts, lead=N)  # nothing finishes yet
    support.wait_until(lambda: queued(rig.ns) >= 3 * BOUND, timeout=60, what="every partition at the in-flight bound")

    # When a second bridge joins (some of them move to it) and leaves again (they move back), and a worker starts
    run.mark_fault()
    second = rig.start_bridge(topic, KBFAULT_MAX_IN_FLIGHT=str(BOUND), KBFAULT_SHUTDOWN_TIMEOUT="2")
    second.wait_for_log(rf"assigned {topic}\[", timeout=60)
    second.signal(signal.SIGTERM)
    assert second.process.wait(60) == 0
    first.wait_for_log(rf"revoked (.|\n)*assigned {topic}\[", timeout=60)  # they came back
    rig.start_worker()
    run.mark_restored()

    # Then the first bridge consumes the partitions that came back, to the end
    figures = rig.settle(run, timeout=60)
    report("8b", "Partitions held at the in-flight bound that move to a second bridge and back are consumed again",
           "rebalance away and back while paused", figures)
    figures.assert_sound(duplicates=0)
