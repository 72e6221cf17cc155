"""Start-up checks that refuse configurations known to lose or duplicate messages."""

from __future__ import annotations

from typing import Iterable
from urllib.parse import urlparse

from celery import Celery

from .backoff import STORE_OUTAGE_MAX_DELAY
from .errors import ConfigurationError
from .registry import Route

REDIS_DEFAULT_VISIBILITY_TIMEOUT = 3600.0
"""Seconds; kombu's default for the Redis (and SQS) transports."""
VISIBILITY_TIMEOUT_BROKERS = ("redis", "rediss", "sentinel", "sqs")


def check_visibility_timeout(app: Celery, routes: Iterable[Route]) -> None:
    """Refuse retry policies whose countdown plus run time reaches the broker's visibility timeout.

    On Redis, a task not acknowledged within ``visibility_timeout`` seconds is handed to another
    worker. A countdown retry waits, unacknowledged, in a worker: if it waits longer than that, the
    same message runs twice. See Celery's "Redis: visibility timeout" caveat.
    """
    scheme = urlparse(str(app.conf.broker_url or "")).scheme.split("+")[0]
    if scheme not in VISIBILITY_TIMEOUT_BROKERS:
        return
    visibility_timeout = float(
        (app.conf.broker_transport_options or {}).get("visibility_timeout", REDIS_DEFAULT_VISIBILITY_TIMEOUT)
    )
    for route in routes:
        time_limit = route.time_limit if route.time_limit is not None else app.conf.task_time_limit
        if time_limit is None:
            raise ConfigurationError(
                f"handler {route.task_name!r} (topic {route.topic!r}) has no time limit, so its retries can outlive "
                f"the broker's visibility_timeout ({visibility_timeout:.0f}s) and run twice: "
                "pass time_limit=... to @kafka_handler or set the Celery task_time_limit"
            )
        worst = max(route.retry_policy.longest_delay, STORE_OUTAGE_MAX_DELAY) + float(time_limit)
        if worst >= visibility_timeout:
            raise ConfigurationError(
                f"handler {route.task_name!r} (topic {route.topic!r}): longest retry delay "
                f"{worst - float(time_limit):.0f}s + time limit {float(time_limit):.0f}s = {worst:.0f}s reaches "
                f"the broker's visibility_timeout of {visibility_timeout:.0f}s, so a waiting retry would be delivered "
                "twice. Lower RetryPolicy.max_delay or the time limit, or raise "
                "broker_transport_options['visibility_timeout'] (CELERY_BROKER_TRANSPORT_OPTIONS in Django)"
            )
