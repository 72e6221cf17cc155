"""Start-up checks that refuse configurations known to lose or duplicate messages, and warn of ones
known to delay them."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable
from urllib.parse import urlparse

from celery import Celery

from .completion import DEFAULT_RUN_SECONDS
from .errors import ConfigurationError
from .registry import Route
from .routing import queue_name

REDIS_DEFAULT_VISIBILITY_TIMEOUT = 3600.0
"""Seconds; kombu's default for the Redis (and SQS) transports."""
VISIBILITY_TIMEOUT_BROKERS = ("redis", "rediss", "sentinel", "sqs")
SETTING = "broker_transport_options['visibility_timeout'] (CELERY_BROKER_TRANSPORT_OPTIONS in Django)"


def visibility_timeout(app: Celery) -> float | None:
    """Seconds before the broker hands an unacknowledged task to another worker; None if it never does."""
    scheme = urlparse(str(app.conf.broker_url or "")).scheme.split("+")[0]
    if scheme not in VISIBILITY_TIMEOUT_BROKERS:
        return None
    options = app.conf.broker_transport_options or {}
    return float(options.get("visibility_timeout", REDIS_DEFAULT_VISIBILITY_TIMEOUT))


def countdown_room(app: Celery, time_limit: float | None) -> float:
    """The longest countdown a handler task may wait in the broker before its run: what the visibility
    timeout leaves after the run's time limit (the store-outage backoff stays below it)."""
    timeout = visibility_timeout(app)
    if timeout is None:
        return float("inf")
    return max(1.0, timeout - float(time_limit or app.conf.task_time_limit or DEFAULT_RUN_SECONDS))


def check_visibility_timeout(app: Celery, routes: Iterable[Route]) -> None:
    """Refuse retry policies whose countdown plus run time reaches the broker's visibility timeout.

    On Redis, a task not acknowledged within ``visibility_timeout`` seconds is handed to another
    worker. A countdown retry waits, unacknowledged, in a worker, then runs for up to its time limit:
    if the two together reach the timeout, the same message runs twice. That sum is what bounds a
    task's time in the broker; a reservation lost with a dead worker does not depend on it (the
    bridge dispatches the message again when its lease runs out), and the dead-letter store's
    backoff is kept below the room the timeout leaves (:func:`countdown_room`).
    """
    timeout = visibility_timeout(app)
    if timeout is None:
        return
    for route in routes:
        time_limit = route.time_limit if route.time_limit is not None else app.conf.task_time_limit
        if time_limit is None:
            raise ConfigurationError(
                f"handler {route.task_name!r} (topic {route.topic!r}) has no time limit, so its retries can outlive "
                f"the broker's visibility_timeout ({timeout:.0f}s) and run twice: "
                "pass time_limit=... to @kafka_handler or set the Celery task_time_limit"
            )
        delay, run = route.retry_policy.longest_delay, float(time_limit)
        if delay + run >= timeout:
            raise ConfigurationError(
                f"handler {route.task_name!r} (topic {route.topic!r}): longest retry delay {delay:.0f}s + time limit "
                f"{run:.0f}s = {delay + run:.0f}s reaches the broker's visibility_timeout of {timeout:.0f}s, so a "
                f"waiting retry would be delivered twice. {_what_to_change(delay, run)}, or raise {SETTING}"
            )


def _what_to_change(delay: float, run: float) -> str:
    if delay >= run:
        return f"Lower RetryPolicy.max_delay ({delay:.0f}s)"
    return f"Lower the handler's time_limit ({run:.0f}s, @kafka_handler(time_limit=...) or Celery task_time_limit)"


def throttled_queue_neighbours(app: Celery, routes: Iterable[Route], default_queue: str | None) -> list[str]:
    """A warning per queue where a throttled handler shares the queue with other handlers.

    A throttled handler's backlog waits for its tokens in the worker's pool slots, in queue order, so a
    neighbour's messages wait behind that backlog (at a low rate: minutes). Not refused: a neighbour
    with little traffic, or a limit that never binds, may be fine; but it should be a choice.
    """
    members: dict[str, list[str]] = defaultdict(list)
    throttled: set[str] = set()
    for route in routes:
        members[queue_name(app, route.task_name, default_queue)].append(route.task_name)
        if getattr(app.tasks.get(route.task_name), "kafka_throttle", None) is not None:
            throttled.add(route.task_name)
    warnings = []
    for queue, names in sorted(members.items()):
        slow = sorted(throttled.intersection(names))
        others = sorted(set(names) - set(slow[:1]))
        if slow and others:
            warnings.append(
                f"queue {queue!r}: throttled handler(s) {', '.join(slow)} share it with {', '.join(others)}; while a "
                "throttled backlog waits for tokens in the pool slots, the others' messages wait behind it. Give each "
                "throttled handler a queue of its own (@kafka_handler(..., queue='...')) and a worker consuming it"
            )
    return warnings
