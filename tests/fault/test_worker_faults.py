"""Workers die, hang or are killed by their own messages mid-stream: nothing is lost, nothing loops.

Scenarios 3 (kill -9 of a pool process mid-task), 4 (kill -9 of the worker's main process while it
holds prefetched and countdown tasks), 10 and 10b (handlers slower than their soft and their hard
time limit) and 12 (a message that kills its worker is dead-lettered after K crashes).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Callable

import redis

from tests import support
from tests.fault.app import plan
from tests.fault.checker import Event, Run
from tests.fault.rig import Rig

N = 200
RATE = 100.0
VISIBILITY_TIMEOUT = 3600.0
"""The broker's visibility timeout in these tests (dashboard/settings.py default): recovery must not wait for it."""


def running_long_message(run: Run) -> Event | None:
    """A run of a long message (``plan.LONG_WORK`` seconds) that began and has not ended yet."""
    events = run.events()
    ended = {(e.message_id, e.pid) for e in events if e.kind in ("ok", "dead")}
    for event in reversed(events):
        if event.kind == "start" and plan.long(event.message_id) and (event.message_id, event.pid) not in ended:
            return event
    return None


def runs_of(run: Run, message_id: str) -> list[Event]:
    return [e for e in run.events() if e.kind == "start" and e.message_id == message_id]


def test_a_pool_process_killed_mid_task_loses_nothing(rig: Rig, report) -> None:
    # Given a stream under way, and a pool process in the middle of a long run
    topic = rig.topic("fault")
    worker = rig.start_worker()
    rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    victim = support.wait_until(lambda: running_long_message(run), timeout=60, what="a long run to begin")
    assert victim.pid in rig.pool_processes(worker)

    # When that pool process is killed with kill -9
    run.mark_fault()
    os.kill(victim.pid, signal.SIGKILL)

    # Then its message runs again (the same attempt: a crash is not a failure), and nothing is lost
    figures = rig.settle(run)
    report(3, "kill -9 of a worker's pool process mid-task loses nothing", "pool process kill -9 mid-run", figures)
    figures.assert_sound(duplicates=1)
    runs = runs_of(run, victim.message_id)
    assert [e.attempt for e in runs] == [victim.attempt] * 2, f"{victim.message_id} ran {runs}"
    assert worker.alive()


def unacknowledged(ns: str) -> list[dict]:
    """The Celery messages of queue ``ns`` that a worker took from Redis and has not acknowledged (kombu's ``unacked``)."""
    broker = redis.Redis.from_url(support.BROKER_URL)
    entries = (json.loads(raw) for raw in broker.hvals("unacked"))  # [message, exchange, routing key]
    return [entry[0] for entry in entries if entry[2] == ns]


def holding_prefetched_and_countdown_tasks(ns: str, concurrency: int) -> bool:
    held = unacknowledged(ns)
    countdowns = [m for m in held if m["headers"].get("eta")]
    return len(held) - len(countdowns) > concurrency and bool(countdowns)


def test_a_worker_killed_with_prefetched_and_countdown_tasks_loses_nothing_long_before_the_visibility_timeout(
    rig: Rig, report
) -> None:
    # Given a worker that holds prefetched tasks, countdown retries and a long run in progress
    topic = rig.topic("fault")
    worker = rig.start_worker(concurrency=2, CELERY_WORKER_PREFETCH_MULTIPLIER="8")
    rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    support.wait_until(lambda: running_long_message(run) and holding_prefetched_and_countdown_tasks(rig.ns, 2),
                       timeout=60, what="the worker to hold prefetched and countdown tasks during a long run")
    held = unacknowledged(rig.ns)

    # When its main process is killed with kill -9, and a new worker starts
    run.mark_fault()
    rig.kill_worker(worker)
    rig.start_worker()
    run.mark_restored()

    # Then every message reaches its outcome, long before the broker would hand the held tasks out again
    figures = rig.settle(run, timeout=180)
    figures.notes.update(held_at_kill=len(held), countdowns_at_kill=sum(1 for m in held if m["headers"].get("eta")))
    report(4, "kill -9 of a worker's main process holding prefetched and countdown tasks loses nothing, "
              "long before the visibility timeout", "worker main process kill -9, new worker", figures)
    figures.assert_sound(duplicates=2)  # at most the runs in progress at the kill run again
    assert figures.recovery_s is not None and figures.recovery_s < VISIBILITY_TIMEOUT / 20


SLOW_N = 200
SLOW_RATE = 50.0


def test_handlers_slower_than_their_soft_time_limit_are_retried_or_dead_lettered(rig: Rig, report) -> None:
    # Given a handler with a 2 s time limit (soft limit at 1 s) that outlasts it on some messages:
    # on their first run, or on every run
    topic = rig.topic("slow")
    rig.start_worker(concurrency=4)
    rig.start_bridge(topic)

    # When a stream runs through it
    run = rig.stream(topic, n=SLOW_N, rate=SLOW_RATE, max_attempts=plan.SLOW_POLICY.max_attempts)
    figures = rig.settle(run)

    # Then slow once → retried and handled; slow every time → dead-lettered after the policy's attempts
    ids = run.producing.ids()
    figures.recovery_s = run.span(m for m in ids if plan.slowness(m))
    report(10, "Handlers slower than their time limit are retried, and dead-lettered when always too slow",
           "soft time limit (1 s) on the first run / on every run", figures)
    figures.assert_sound(duplicates=0)
    assert outcomes_by_kind(run, ids, plan.slowness) == {"": {"ok"}, "once": {"ok"}, "always": {"dead"}}


def outcomes_by_kind(run: Run, ids: list[str], kind_of: Callable[[str], str]) -> dict[str, set[str]]:
    outcomes = {e.message_id: e.kind for e in run.events() if e.kind in ("ok", "dead")}
    found: dict[str, set[str]] = {}
    for message_id in ids:
        found.setdefault(kind_of(message_id), set()).add(outcomes.get(message_id, "none"))
    return found


HANG_N = 100


def test_a_handler_killed_by_its_hard_time_limit_runs_again_and_is_dead_lettered_after_k_crashes(rig: Rig, report) -> None:
    # Given a handler (2 s time limit, max_crashes=2) that swallows SoftTimeLimitExceeded on some
    # messages, so that Celery's hard limit kills its pool process: on their first run, or on every run
    topic = rig.topic("hang")
    rig.start_worker(concurrency=3)
    rig.start_bridge(topic)

    # When a stream runs through it
    run = rig.stream(topic, n=HANG_N, rate=SLOW_RATE, max_attempts=plan.SLOW_POLICY.max_attempts)
    ids = run.producing.ids()
    hanging = [m for m in ids if plan.hang(m) == "always"]

    def dead_or_past_k(message_id: str) -> bool:
        return message_id in run.finished_ids() or len(runs_of(run, message_id)) > plan.HANG_MAX_CRASHES

    support.wait_until(lambda: all(dead_or_past_k(m) for m in hanging), timeout=150,
                       what=f"each hanging message dead-lettered, or run more than {plan.HANG_MAX_CRASHES} times")
    looping = any(m not in run.finished_ids() for m in hanging)
    figures = rig.settle(run, timeout=1 if looping else 60)  # a loop is known already: take the figures now

    # Then a message killed once runs again and is handled; one killed on every run is dead-lettered after
    # K runs (a run the hard limit killed counts as a crash, like any run that killed its process)
    figures.recovery_s = run.span(m for m in ids if plan.hang(m))
    report("10b", f"A handler killed by its hard time limit runs again, and is dead-lettered after "
                  f"{plan.HANG_MAX_CRASHES} such crashes", "hard time limit (2 s) on the first run / on every run", figures)
    once = sum(1 for m in ids if plan.hang(m) == "once")
    figures.assert_sound(duplicates=once + (plan.HANG_MAX_CRASHES - 1) * len(hanging))
    assert outcomes_by_kind(run, ids, plan.hang) == {"": {"ok"}, "once": {"ok"}, "always": {"dead"}}
    for message_id in hanging:
        assert len(runs_of(run, message_id)) == plan.HANG_MAX_CRASHES


CRASH_N = 200


def test_a_message_that_kills_its_worker_is_dead_lettered_after_k_crashes(rig: Rig, report) -> None:
    # Given a stream in which every 200th message kills its worker process on every run
    topic = rig.topic("crash")
    worker = rig.start_worker()
    rig.start_bridge(topic)
    run = rig.stream(topic, n=CRASH_N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    figures = rig.settle(run)

    # Then each of them ran K times, all on its first attempt, and was dead-lettered for it; the rest were handled
    crashers = [m for m in run.producing.ids() if plan.crashes(m)]
    figures.recovery_s = run.span(crashers)
    report(12, f"A message that kills its worker is dead-lettered after {plan.MAX_CRASHES} crashes",
           "os._exit in the handler", figures)
    figures.assert_sound(duplicates=(plan.MAX_CRASHES - 1) * len(crashers))
    assert figures.dead_lettered == len(crashers) and figures.handled == CRASH_N - len(crashers)
    for message_id in crashers:
        assert [e.attempt for e in runs_of(run, message_id)] == [1] * plan.MAX_CRASHES
    reasons = {e.facts["reason"] for e in run.events() if e.kind == "dead"}
    assert reasons == {f"crashed the worker {plan.MAX_CRASHES} times"}
    assert worker.alive()
