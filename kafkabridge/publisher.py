"""Hands consumed Kafka messages to their handler tasks on the Celery broker."""

from __future__ import annotations

from typing import Mapping, Sequence

from celery import Celery

from .errors import PublishError
from .message import Message
from .registry import Route


class CeleryPublisher:
    """Publishes one Celery task per message, in order, on one reused broker connection.

    A publish that returns is confirmed by the broker (kombu's Redis transport returns after the
    push). Messages go by task name, so the bridge needs the routes but not the handler code.
    """

    def __init__(self, app: Celery, routes: Mapping[str, Route], *, queue: str | None = None) -> None:
        self._app = app
        self._task_names = {topic: route.task_name for topic, route in routes.items()}
        self._queue = queue

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` in order; on failure, :class:`PublishError` says how many went through."""
        published = 0
        try:
            with self._app.producer_or_acquire() as producer:
                for message in messages:
                    self._app.send_task(
                        self._task_names[message.topic],
                        args=[message.to_envelope()],
                        task_id=str(message.id),
                        queue=self._queue,
                        producer=producer,
                        retry=False,
                        ignore_result=True,
                    )
                    published += 1
        except Exception as error:
            raise PublishError(error, published=published) from error
