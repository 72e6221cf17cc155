"""The fault suite's handlers; what each message does to them is decided by its id (see plan.py)."""

from __future__ import annotations

import os
import time

import redis
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded

from kafkabridge import Message, kafka_handler
from tests.app.recorder import topic

from . import journal, plan


@kafka_handler(topic("fault"), retry=plan.POLICY, time_limit=plan.TIME_LIMIT, completion_timeout=plan.COMPLETION_TIMEOUT)
def flaky(message: Message) -> None:
    """Fails the planned number of times (then succeeds, or is dead-lettered), after working a little."""
    message_id = journal.message_id(message)
    journal.write("start", message)
    time.sleep(plan.work(message_id))
    if message.attempt <= plan.failures(message_id):
        raise ConnectionError(f"downstream unavailable for {message_id} (attempt {message.attempt})")
    journal.write("ok", message)


@kafka_handler(topic("slow"), retry=plan.SLOW_POLICY, time_limit=plan.SLOW_TIME_LIMIT,
               completion_timeout=plan.SLOW_COMPLETION_TIMEOUT)
def sometimes_too_slow(message: Message) -> None:
    """Outlasts its time limit as planned, cooperatively: the soft limit interrupts it."""
    kind = plan.slowness(journal.message_id(message))
    journal.write("start", message, kind=kind)
    if kind == "always" or (kind == "once" and journal.first_run(message, "slow")):
        time.sleep(plan.SLOW_SLEEP)  # SoftTimeLimitExceeded is raised in here
    journal.write("ok", message)


@kafka_handler(topic("hang"), retry=plan.SLOW_POLICY, time_limit=plan.SLOW_TIME_LIMIT, max_crashes=plan.HANG_MAX_CRASHES,
               completion_timeout=plan.SLOW_COMPLETION_TIMEOUT)
def hangs_past_its_time_limit(message: Message) -> None:
    """Swallows the soft limit as planned, so that the hard limit kills the pool process under it."""
    kind = plan.hang(journal.message_id(message))
    journal.write("start", message, kind=kind)
    if kind == "always" or (kind == "once" and journal.first_run(message, "hang")):
        _sleep_through_soft_limit(plan.SLOW_SLEEP)
    journal.write("ok", message)


def _sleep_through_soft_limit(seconds: float) -> None:
    """Like a handler that catches every Exception and carries on: the hard limit has to kill the process."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except SoftTimeLimitExceeded:
            continue


@kafka_handler(topic("crash"), retry=plan.POLICY, time_limit=plan.TIME_LIMIT, max_crashes=plan.MAX_CRASHES,
               completion_timeout=plan.COMPLETION_TIMEOUT)
def crashes_its_worker(message: Message) -> None:
    """Kills its worker process (as a segfault or the OOM killer would) on every run of a planned message."""
    journal.write("start", message)
    if plan.crashes(journal.message_id(message)):
        os._exit(70)
    journal.write("ok", message)


@kafka_handler(topic("stall"), retry=plan.SLOW_POLICY, time_limit=plan.STALL_TIME_LIMIT)
def fails_while_redis_stalls(message: Message) -> None:
    """On its first run, stalls the Celery broker's Redis (as a slow disk or a long fork would) and fails."""
    journal.write("start", message)
    if journal.first_run(message, "stall"):
        redis.Redis.from_url(current_app.conf.broker_url).client_pause(int(plan.STALL_SECONDS * 1000))
        raise ConnectionError("downstream unavailable, and Redis stalls")
    journal.write("ok", message)
