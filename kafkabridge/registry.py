"""Which handler task each Kafka topic goes to: filled by ``@kafka_handler``, read by the bridge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .errors import ConfigurationError
from .retry_policy import RetryPolicy


@dataclass(frozen=True, slots=True)
class Route:
    """Messages of ``topic`` go to the Celery task named ``task_name``."""

    topic: str
    task_name: str
    retry_policy: RetryPolicy
    time_limit: float | None
    """Hard time limit of one handler run, in seconds (None: the Celery app's ``task_time_limit``)."""
    max_crashes: int = 3
    """A message whose runs killed their worker process this many times is dead-lettered."""
    completion_timeout: float | None = None
    """Seconds a published message may go without a final outcome or a live lease before the bridge
    dispatches it again; None: :meth:`default_completion_timeout`."""

    def default_completion_timeout(self, time_limit: float) -> float:
        """Longer than the longest retry schedule could need: every attempt at its time limit, every
        wait at the policy's longest delay, plus a minute. A waiting retry renews its lease, so this
        only bounds a task that never started: lost with the broker, or stuck in a dead worker."""
        policy = self.retry_policy
        return policy.max_attempts * time_limit + (policy.max_attempts - 1) * policy.longest_delay + 60.0


class HandlerRegistry:
    """Topic → handler routes. One handler per topic, so every message has exactly one owner."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def register(self, route: Route) -> None:
        existing = self._routes.get(route.topic)
        if existing is not None and existing.task_name != route.task_name:
            raise ConfigurationError(
                f"topic {route.topic!r} has two handlers: {existing.task_name!r} and {route.task_name!r}; "
                "a topic must have exactly one @kafka_handler"
            )
        self._routes[route.topic] = route

    def topics(self) -> tuple[str, ...]:
        return tuple(sorted(self._routes))

    def routes_for(self, topics: Iterable[str] = ()) -> dict[str, Route]:
        """Routes of ``topics`` (all registered ones when empty); a topic without a handler is an error."""
        wanted = tuple(topics) or self.topics()
        if not wanted:
            raise ConfigurationError(
                "no Kafka handlers are registered: decorate a Celery task with @kafka_handler('topic') "
                "and make sure its module is imported (Celery autodiscovery imports each app's tasks.py)"
            )
        missing = [topic for topic in wanted if topic not in self._routes]
        if missing:
            raise ConfigurationError(
                f"no handler for topic(s) {', '.join(map(repr, missing))}: decorate a Celery task with "
                f"@kafka_handler({missing[0]!r}) and make sure its module is imported "
                f"(topics with handlers: {', '.join(self.topics()) or 'none'})"
            )
        return {topic: self._routes[topic] for topic in wanted}


handlers = HandlerRegistry()
"""The process-wide registry that ``@kafka_handler`` fills by default."""
