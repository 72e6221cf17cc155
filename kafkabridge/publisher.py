"""Hands consumed Kafka messages to their handler tasks on the Celery broker, a batch at a time.

Celery's own ``send_task`` costs a broker round trip (and, on Redis, an exchange lookup) per
message, which caps a bridge at a few hundred to a couple of thousand messages a second. Here the
Celery message (protocol 2) is built once per handler per batch with Celery's ``app.amqp.as_task_v2``;
each message only changes its task id and arguments. Kombu's ``Producer.batch`` then sends the
whole batch as one pipelined write. A stock ``celery worker`` consumes the result unchanged.

Celery's ``before_task_publish``/``after_task_publish`` signals are not sent for these publishes:
use :class:`kafkabridge.hooks.Hooks` (``on_batch_published``) to observe them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from celery import Celery
from kombu import Queue
from kombu.utils.json import dumps

from .errors import PublishError
from .message import Message
from .registry import Route

COMMANDS_PER_MESSAGE = 4
"""Upper bound of broker commands one publish adds to a batch (a push, plus expiry bookkeeping)."""


@dataclass(frozen=True, slots=True)
class _TaskTemplate:
    """The parts of a handler's Celery message that are the same for every Kafka message."""

    headers: dict[str, Any]
    properties: dict[str, Any]
    embed: dict[str, Any]
    queue: Queue


class CeleryPublisher:
    """Publishes one Celery task per message, in order; a batch is confirmed as a whole or not at all."""

    def __init__(self, app: Celery, routes: Mapping[str, Route], *, queue: str | None = None) -> None:
        self._app = app
        self._task_names = {topic: route.task_name for topic, route in routes.items()}
        self._queue = queue
        self._templates: dict[str, _TaskTemplate] = {}

    def publish(self, messages: Sequence[Message]) -> None:
        """Publish ``messages``; raises :class:`PublishError` (nothing confirmed) if the broker refuses.

        A pipelined write that fails may have been partly applied, so a failed batch is published
        again in full: that can duplicate a message, never lose one.
        """
        if not messages:
            return
        try:
            with self._app.producer_or_acquire() as producer:
                for task_name in {self._task_names[message.topic] for message in messages} - self._templates.keys():
                    producer.maybe_declare(self._template(task_name).queue)
                with producer.batch(max_size=COMMANDS_PER_MESSAGE * len(messages) + 1):
                    for message in messages:
                        self._publish_one(producer, message)
        except Exception as error:
            raise PublishError(error, published=0) from error

    def _publish_one(self, producer: Any, message: Message) -> None:
        task_name = self._task_names[message.topic]
        template = self._templates[task_name]
        task_id = str(message.id)
        producer.publish(
            dumps(([message.to_envelope()], {}, template.embed)),
            exchange="",
            routing_key=template.queue.name,
            headers={**template.headers, "id": task_id, "root_id": task_id, "argsrepr": f"({task_id!r})"},
            content_type="application/json",
            content_encoding="utf-8",
            retry=False,
            **{**template.properties, "correlation_id": task_id},
        )

    def _template(self, task_name: str) -> _TaskTemplate:
        """Celery's own message for ``task_name`` with placeholder id and arguments, and its queue."""
        route = self._app.amqp.router.route({"queue": self._queue} if self._queue else {}, task_name, (), {})
        queue = route["queue"]
        if not isinstance(queue, Queue):
            queue = self._app.amqp.queues[queue]
        task = self._app.amqp.as_task_v2(
            "placeholder", task_name, args=(), kwargs={}, argsrepr="", kwargsrepr="{}", ignore_result=True
        )
        properties = {k: v for k, v in task.properties.items() if k != "correlation_id"}
        template = _TaskTemplate(headers=dict(task.headers), properties=properties, embed=task.body[2], queue=queue)
        self._templates[task_name] = template
        return template
