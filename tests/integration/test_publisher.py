"""The batched publisher writes the same Celery message that Celery's own send_task writes."""

from __future__ import annotations

import base64
import json

import redis

from dashboard.celery import app
from kafkabridge import Message
from kafkabridge.consumer.publisher import CeleryPublisher
from kafkabridge.registry import handlers


def test_a_batched_publish_is_the_message_send_task_would_have_written(ns: str, django_db_setup: None) -> None:
    app.loader.import_default_modules()
    broker = redis.Redis.from_url(app.conf.broker_url)
    message = Message(topic=f"{ns}.record", partition=2, offset=9, key=b"\xff", value=b"v", headers=(("h", b"\x00"),))
    route = handlers.routes_for(["kbtest.record"])["kbtest.record"]
    try:
        CeleryPublisher(app, {message.topic: route}, queue=f"{ns}-batched").publish([message])
        app.send_task(route.task_name, args=[message.to_envelope()], task_id=str(message.id), queue=f"{ns}-celery", ignore_result=True)
        ours, celerys = (json.loads(broker.lpop(f"{ns}-{name}")) for name in ("batched", "celery"))
    finally:
        broker.delete(f"{ns}-batched", f"{ns}-celery")

    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(celerys["body"]))
    assert ours["content-type"] == celerys["content-type"] and ours["content-encoding"] == celerys["content-encoding"]
    differ = {"argsrepr", "origin"}  # our argsrepr names the record; origin carries a pid
    assert {k: v for k, v in ours["headers"].items() if k not in differ} == {k: v for k, v in celerys["headers"].items() if k not in differ}
    assert ours["properties"]["correlation_id"] == celerys["properties"]["correlation_id"] == str(message.id)
    assert ours["properties"]["body_encoding"] == celerys["properties"]["body_encoding"]
