"""The batched publisher writes the same Celery message that Celery's own send_task writes, for the
bridge's deliveries and for requeues."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import redis

import kafkabridge
from dashboard.celery import app
from kafkabridge import Message, runtime
from kafkabridge.consumer.publisher import CeleryPublisher, Dispatch
from kafkabridge.registry import handlers
from kafkabridge.wire import Delivery, encode_envelope

DIFFER = {"argsrepr", "origin"}  # our argsrepr names the record; origin carries a pid


def popped(broker: redis.Redis, queue: str) -> dict[str, Any]:
    return json.loads(broker.lpop(queue))


def body(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


def assert_same_celery_message(ours: dict[str, Any], celerys: dict[str, Any]) -> None:
    assert body(ours) == body(celerys)
    assert ours["content-type"] == celerys["content-type"] and ours["content-encoding"] == celerys["content-encoding"]
    assert {k: v for k, v in ours["headers"].items() if k not in DIFFER} == {k: v for k, v in celerys["headers"].items() if k not in DIFFER}
    assert ours["properties"]["correlation_id"] == celerys["properties"]["correlation_id"]
    assert ours["properties"]["body_encoding"] == celerys["properties"]["body_encoding"]


def test_a_batched_publish_is_the_message_send_task_would_have_written(ns: str, django_db_setup: None) -> None:
    app.loader.import_default_modules()
    broker = redis.Redis.from_url(app.conf.broker_url)
    message = Message(topic=f"{ns}.record", partition=2, offset=9, key=b"\xff", value=b"v", headers=(("h", b"\x00"),))
    route = handlers.routes_for(["kbtest.record"])["kbtest.record"]
    try:
        CeleryPublisher(app, {message.topic: route}, queue=f"{ns}-batched").publish([message])
        app.send_task(route.task_name, args=[encode_envelope(message)], task_id=str(message.id), queue=f"{ns}-celery", ignore_result=True)
        ours, celerys = (popped(broker, f"{ns}-{name}") for name in ("batched", "celery"))
    finally:
        broker.delete(f"{ns}-batched", f"{ns}-celery")

    assert_same_celery_message(ours, celerys)
    assert ours["properties"]["correlation_id"] == str(message.id)


def test_a_dispatch_with_a_delivery_state_is_the_message_send_task_would_have_written(ns: str, django_db_setup: None) -> None:
    app.loader.import_default_modules()
    broker = redis.Redis.from_url(app.conf.broker_url)
    message = Message(topic=f"{ns}.record", partition=0, offset=3, value=b"v")
    dispatch = Dispatch(message, "tests.app.tasks.record", Delivery(requeue_id="0123456789ab"))
    try:
        CeleryPublisher(app, {}, queue=f"{ns}-batched").send([dispatch])
        app.send_task(
            dispatch.task_name, args=[encode_envelope(message)], kwargs=dispatch.delivery.to_kwargs(),
            task_id=dispatch.task_id, queue=f"{ns}-celery", ignore_result=True,
        )
        ours, celerys = (popped(broker, f"{ns}-{name}") for name in ("batched", "celery"))
    finally:
        broker.delete(f"{ns}-batched", f"{ns}-celery")

    assert_same_celery_message(ours, celerys)
    assert ours["headers"]["id"] == f"{message.id}:requeue:0123456789ab"
    assert body(ours)[1] == {"kb": {"v": 1, "requeue_id": "0123456789ab"}}


def test_requeue_publishes_through_the_publisher_with_fresh_attempts(ns: str, django_db_setup: None) -> None:
    app.loader.import_default_modules()
    broker = redis.Redis.from_url(app.conf.broker_url)
    before = runtime.current()
    kafkabridge.configure(replace(before.settings, queue=f"{ns}-requeue"), hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
    message = Message(topic=f"{ns}.record", partition=1, offset=4, key=b"\x00", value=b"\xff", attempt=3)
    try:
        returned_id = kafkabridge.requeue(app, message, "tests.app.tasks.record")
        written = popped(broker, f"{ns}-requeue")
    finally:
        kafkabridge.configure(before.settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
        broker.delete(f"{ns}-requeue")

    args, kwargs, _ = body(written)
    assert written["headers"]["id"] == returned_id and returned_id.startswith(f"{message.id}:requeue:")
    assert written["headers"]["retries"] == 0  # Celery's retry count: the handler sees attempt 1
    assert written["headers"]["task"] == "tests.app.tasks.record"
    assert args == [encode_envelope(message)]
    assert Delivery.from_kwargs(kwargs) == Delivery(requeue_id=returned_id.rsplit(":", 1)[1])
