"""``build_bridge``: a bridge wired from settings and the handlers' routes, checked before it runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from celery import Celery

from ..checks import check_visibility_timeout
from ..completion import DEFAULT_RUN_SECONDS, ledger_for
from ..hooks import HookDispatcher
from ..observability.bridges import reporter_for
from ..ratelimit.limiter import limiter_for
from ..registry import Route, handlers
from ..settings import BridgeSettings
from .bridge import Bridge
from .completion import CompletionTracking
from .flow_control import Cause
from .publisher import CeleryPublisher
from .rate_limit import PartitionRateLimit


def build_bridge(
    app: Celery,
    settings: BridgeSettings,
    *,
    topics: Sequence[str] = (),
    group_id: str | None = None,
    hooks: HookDispatcher | None = None,
) -> Bridge:
    """A bridge for ``topics`` (default: the settings', else every topic with a handler), checked before it runs.

    Imports the Celery app's task modules so that every ``@kafka_handler`` has registered its topic.
    """
    app.loader.import_default_modules()
    if group_id:
        settings = replace(settings, group_id=group_id)
    routes = handlers.routes_for(topics or settings.topics)
    check_visibility_timeout(app, routes.values())
    publisher = CeleryPublisher(app, routes, queue=settings.queue)
    completion = _completion_tracking(app, settings, routes) if settings.tracks_completion else None
    return Bridge(
        settings=settings, topics=list(routes), publisher=publisher, hooks=hooks, completion=completion,
        causes=_rate_limits(app, settings, routes, hooks),
        status=reporter_for(settings, str(app.conf.broker_url or "")),
    )


def _rate_limits(app: Celery, settings: BridgeSettings, routes: Mapping[str, Route], hooks: HookDispatcher | None) -> list[Cause]:
    limits = {topic: limit for topic, limit in settings.topic_limits().items() if topic in routes}
    if not limits:
        return []
    limiter = limiter_for("bridge", url=settings.rate_limit_redis_url, broker_url=str(app.conf.broker_url or ""), hooks=hooks)
    return [PartitionRateLimit(limiter, settings.group_id, limits)]


def _completion_tracking(app: Celery, settings: BridgeSettings, routes: Mapping[str, Route]) -> CompletionTracking:
    ledger = ledger_for(settings.group_id, url=settings.completion_redis_url, broker_url=str(app.conf.broker_url or ""))
    timeouts = {}
    for topic, route in routes.items():
        time_limit = float(route.time_limit or app.conf.task_time_limit or DEFAULT_RUN_SECONDS)
        timeouts[topic] = route.completion_timeout or route.default_completion_timeout(time_limit)
    return CompletionTracking(ledger, timeouts=timeouts)
