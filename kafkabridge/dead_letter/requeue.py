"""Sending a dead letter back to its handler: the queue side of an operator's "requeue" click.

The operator console claims the record first (an atomic status change), then calls :func:`requeue`;
this module knows nothing about how records are stored.
"""

from __future__ import annotations

from uuid import uuid4

from celery import Celery

from .. import runtime
from ..worker.handler import REQUEUED
from ..message import Message
from ..consumer.publisher import route_options


def requeue(app: Celery, message: Message, handler: str) -> str:
    """Publish ``message`` to the task named ``handler`` with fresh attempts; returns the Celery task id.

    The envelope starts at attempt 1 (attempts are counted by Celery's retries, not carried in it).
    The task marks the dead letter resolved when the handler succeeds; if it fails again, the
    same record is updated (one record per message id).
    """
    wiring = runtime.current()
    task_id = f"{message.id}:requeue:{uuid4().hex[:12]}"
    route = route_options(app, handler, wiring.settings.queue)
    app.send_task(
        handler,
        args=[message.to_envelope()],
        kwargs={REQUEUED: True},
        task_id=task_id,
        queue=route["queue"],
        ignore_result=True,
    )
    wiring.hooks.emit("on_requeued", message.id, handler, task_id)
    return task_id
