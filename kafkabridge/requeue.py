"""Sending a dead letter back to its handler: the queue side of an operator's "requeue" click.

The operator console claims the record first (an atomic status change), then calls :func:`requeue`;
this module knows nothing about how records are stored.
"""

from __future__ import annotations

from celery import Celery

from . import runtime
from .consumer.publisher import CeleryPublisher, Dispatch
from .message import Message
from .observability import tracing
from .wire import Delivery, new_requeue_id


def requeue(app: Celery, message: Message, handler: str) -> str:
    """Publish ``message`` to the task named ``handler`` with fresh attempts; returns the Celery task id.

    It goes through the bridge's publisher, so it is routed and written as the bridge would write
    it, with Celery's retry count at 0: the handler sees attempt 1 again. The task marks the dead
    letter resolved when the handler succeeds; if it fails again, the same record is updated (one
    record per message id). Raises :class:`~kafkabridge.errors.PublishError` if the broker refuses.
    """
    wiring = runtime.current()
    with tracing.requeueing(message, handler) as trace:  # the runs that follow join the message's trace
        dispatch = Dispatch(message, handler, Delivery(requeue_id=new_requeue_id(), trace=trace))
        CeleryPublisher(app, {}, queue=wiring.settings.queue).send([dispatch])
    wiring.hooks.emit("on_requeued", message.id, handler, dispatch.task_id)
    return dispatch.task_id
