"""Which Celery queue a handler's tasks go to: the one answer the bridge, requeue and the start-up checks share."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

ROUTING_OPTIONS = ("queue", "exchange", "routing_key", "priority")


def route_options(app: Celery, task_name: str, default_queue: str | None) -> dict[str, Any]:
    """Where Celery would send ``task_name``: its own options, then ``task_routes``, then ``default_queue``.

    The handler module need not be imported (the admin requeues by name); then only the routes apply.
    """
    options: dict[str, Any] = {"queue": default_queue} if default_queue else {}
    task: Task | None = app.tasks.get(task_name)
    if task is not None:
        options.update({k: getattr(task, k) for k in ROUTING_OPTIONS if getattr(task, k, None) is not None})
    return app.amqp.router.route(options, task_name, (), {}, task_type=task)


def queue_name(app: Celery, task_name: str, default_queue: str | None) -> str:
    """The name of the queue ``task_name`` goes to."""
    queue = route_options(app, task_name, default_queue).get("queue")
    return str(getattr(queue, "name", queue) or app.conf.task_default_queue)
