"""Hands consumed Kafka messages to their handler tasks on the Celery broker, a batch at a time.

Celery's own ``send_task`` costs a broker round trip (and, on Redis, an exchange lookup) per
message, which caps a bridge at a few hundred to a couple of thousand messages a second. Here the
Celery message (protocol 2, JSON) is built once per handler with Celery's ``app.amqp.as_task_v2``
and routed once with Celery's router (the handler's own ``queue=``, ``task_routes``, then
``KAFKABRIDGE['QUEUE']``); each message only changes its task id and arguments (both as
:mod:`kafkabridge.wire` defines them). Requeue publishes through here too. Kombu's
``Producer.batch`` then sends the whole batch as one pipelined write. A stock ``celery worker``
consumes the result unchanged.

Differences from ``send_task``, on purpose: Celery's ``before_task_publish``/``after_task_publish``
signals are not sent (use :class:`kafkabridge.hooks.Hooks` ``on_batch_published``); ``argsrepr``
names the Kafka record instead of repeating its bytes; messages go to the routed queue by name.
"Confirmed" means the broker accepted the write: true of Redis; on AMQP brokers enable publisher
confirms (``broker_transport_options={"confirm_publish": True}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from celery import Celery
from kombu import Queue
from kombu.exceptions import BatchPublishError, OperationalError
from kombu.utils.json import dumps

from .. import wire
from ..errors import ConfigurationError, PublishError
from ..message import Message
from ..observability import tracing
from ..registry import Route
from ..routing import route_options

COMMANDS_PER_MESSAGE = 8
"""More than the broker commands one publish adds to a batch (a push, plus expiry bookkeeping), so that
a batch goes out in one write."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One message on its way to a handler task, in the state it will be delivered in."""

    message: Message
    task_name: str
    delivery: wire.Delivery = wire.FIRST_DELIVERY
    trace: str | None = None
    """The dispatch span's traceparent, written into the delivery's kwargs as the task is published
    (the delivery itself stays the batch's shared one)."""

    @property
    def task_id(self) -> str:
        return wire.task_id(self.message.id, self.delivery.requeue_id)


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
        self._kwargs: dict[wire.Delivery, tuple[dict[str, Any], str]] = {}
        with app.connection_for_write() as connection:  # not connected: only asks the transport
            self._broker_errors = (
                *connection.connection_errors, *connection.channel_errors, BatchPublishError, OperationalError, OSError
            )

    def publish(self, messages: Sequence[Message], delivery: wire.Delivery = wire.FIRST_DELIVERY) -> None:
        """Publish each of ``messages`` to its topic's handler, all in the state ``delivery``.

        Raises :class:`PublishError` (nothing confirmed) if the broker refuses; see :meth:`send`. With
        tracing on, each message is dispatched in a span of its own, whose context its task carries.
        """
        with tracing.dispatching(messages) as traces:
            self.send([
                Dispatch(message, self._task_names[message.topic], delivery, trace) for message, trace in zip(messages, traces)
            ])

    def send(self, dispatches: Sequence[Dispatch]) -> None:
        """Publish ``dispatches``; raises :class:`PublishError` (nothing confirmed) if the broker refuses.

        A pipelined write that fails may have been partly applied, so a failed batch is published
        again in full: that can duplicate a message, never lose one. Errors that are not the broker's
        (a bug, a misconfiguration) are raised as they are: retrying them would only hide them.
        """
        if not dispatches:
            return
        self._kwargs.clear()
        try:
            with self._app.producer_or_acquire() as producer:
                for task_name in {dispatch.task_name for dispatch in dispatches}:
                    producer.maybe_declare(self._template(task_name).queue)  # cached per connection by kombu
                with producer.batch(max_size=COMMANDS_PER_MESSAGE * len(dispatches) + 1):
                    for dispatch in dispatches:
                        self._publish_one(producer, dispatch)
        except self._broker_errors as error:
            raise PublishError(error, published=0) from error

    def _publish_one(self, producer: Any, dispatch: Dispatch) -> None:
        template = self._template(dispatch.task_name)
        task_id = dispatch.task_id
        kwargs, kwargsrepr = self._kwargs_of(dispatch.delivery)
        if dispatch.trace is not None:
            kwargs = wire.kwargs_with_trace(kwargs, dispatch.trace)
            kwargsrepr = repr(kwargs)
        headers = {**template.headers, "id": task_id, "root_id": task_id, "argsrepr": f"(<kafka record {task_id}>,)"}
        if kwargs:
            headers["kwargsrepr"] = kwargsrepr
        producer.publish(
            dumps(([wire.encode_envelope(dispatch.message)], kwargs, template.embed)),
            exchange="",
            routing_key=template.queue.name,
            headers=headers,
            content_type="application/json",
            content_encoding="utf-8",
            retry=False,
            **{**template.properties, "correlation_id": task_id},
        )

    def _kwargs_of(self, delivery: wire.Delivery) -> tuple[dict[str, Any], str]:
        """A delivery's kwargs and their repr, computed once per batch (a batch usually shares one delivery)."""
        if delivery not in self._kwargs:
            kwargs = delivery.to_kwargs()
            # repr, not Celery's saferepr: these kwargs are small, flat and ours (strings, numbers, a list of
            # numbers), and saferepr cost 160 µs each, which a traced bridge pays per message (one delivery each)
            self._kwargs[delivery] = (kwargs, repr(kwargs) if kwargs else "{}")
        return self._kwargs[delivery]

    def _template(self, task_name: str) -> _TaskTemplate:
        """Celery's own message for ``task_name`` with placeholder id and arguments, and its queue (cached)."""
        if task_name in self._templates:
            return self._templates[task_name]
        if self._app.conf.task_serializer != "json" or self._app.conf.task_compression:
            raise ConfigurationError(
                "kafkabridge publishes handler tasks as uncompressed JSON; set task_serializer='json' and no "
                f"task_compression (found {self._app.conf.task_serializer!r}, {self._app.conf.task_compression!r})"
            )
        route = route_options(self._app, task_name, self._queue)
        queue = route["queue"]
        if not isinstance(queue, Queue):
            queue = self._app.amqp.queues[queue]
        task = self._app.amqp.as_task_v2(
            "placeholder", task_name, args=(), kwargs={}, argsrepr="", kwargsrepr="{}", ignore_result=True
        )
        properties = {k: v for k, v in task.properties.items() if k != "correlation_id"}
        if route.get("priority") is not None:
            properties["priority"] = route["priority"]
        template = _TaskTemplate(headers=dict(task.headers), properties=properties, embed=task.body[2], queue=queue)
        self._templates[task_name] = template
        return template
