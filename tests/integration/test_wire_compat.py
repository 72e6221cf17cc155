"""Tasks queued in Redis by the previous version (envelope v1, five ``kb_*`` kwargs) are still handled.

Each test writes the task exactly as the previous version did (``app.send_task`` with the old kwargs,
the envelope and record spelled out by hand) and a worker of this version runs it.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from dashboard.celery import app
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.wire import decode_history
from tests import support
from tests.app import recorder

KEY, VALUE, HEADERS = b"\x00\xff", b'{"order": 7}', [("trace", b"\x01\x02"), ("trace", None)]


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def old_envelope(topic: str, offset: int) -> dict[str, Any]:
    """A record as the previous version's ``Message.to_envelope`` wrote it."""
    return {
        "v": 1, "topic": topic, "partition": 0, "offset": offset, "key": b64(KEY), "value": b64(VALUE),
        "headers": [[name, b64(value)] for name, value in HEADERS], "timestamp_ms": 1767323045678, "problem": None,
    }


def send_old_task(ns: str, handler: str, envelope: dict[str, Any], kwargs: dict[str, Any], *, requeue: bool = False) -> None:
    """Publish as the previous version's bridge, handler retries and requeue did."""
    task_id = f"{envelope['topic']}/0@{envelope['offset']}" + (f":requeue:{uuid4().hex[:12]}" if requeue else "")
    app.send_task(f"tests.app.tasks.{handler}", args=[envelope], kwargs=kwargs, task_id=task_id, queue=ns, ignore_result=True)


def requeued_row(topic: str, offset: int, handler: str) -> FailedMessage:
    """The dead letter an operator has just requeued (status "requeued")."""
    now = datetime.now(timezone.utc)
    return FailedMessage.objects.create(
        source_topic=topic, source_partition=0, source_offset=offset, key=KEY, value=VALUE, headers=[],
        handler=f"tests.app.tasks.{handler}", reason="retries exhausted", attempts=1, first_failed_at=now,
        last_failed_at=now, status=FailedMessage.Status.REQUEUED, requeue_count=1,
    )


def handled(ns: str, message_id: str) -> int:
    return int(recorder.client().hget(recorder.key("handled", ns), message_id) or 0)


def attempt_log(ns: str, message_id: str) -> list[dict[str, Any]]:
    return [json.loads(entry) for entry in recorder.client().lrange(recorder.key(f"attempts:{message_id}", ns), 0, -1)]


def attempts(ns: str, message_id: str) -> int:
    return recorder.client().llen(recorder.key(f"attempts:{message_id}", ns))


def status(row: FailedMessage) -> str:
    return FailedMessage.objects.get(pk=row.pk).status


def test_an_old_first_delivery_is_handled_with_its_bytes(ns: str, worker: support.ServiceProcess) -> None:
    send_old_task(ns, "parses_json", old_envelope(f"{ns}.poison", 0), {})

    message_id = f"{ns}.poison/0@0"
    support.wait_until(lambda: handled(ns, message_id) == 1, timeout=60, what="the old task to be handled")
    facts = json.loads(recorder.client().hget(recorder.key("facts", ns), message_id))
    assert facts["key"] == b64(KEY) and facts["value_length"] == len(VALUE) and facts["document_type"] == "dict"
    assert facts["headers"] == [["trace", b64(b"\x01\x02")], ["trace", None]]
    assert attempts(ns, message_id) == 1


def test_an_old_retry_keeps_its_first_failure_time_in_the_dead_letter(
    ns: str, worker: support.ServiceProcess, database: None
) -> None:
    first_failed_at = datetime.now(timezone.utc) - timedelta(hours=1)
    send_old_task(ns, "always_fails", old_envelope(f"{ns}.always_fails", 0), {"kb_first_failed_at": first_failed_at.isoformat()})

    row = support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic=f"{ns}.always_fails").first(), timeout=60, what="the dead letter"
    )
    assert row.first_failed_at == first_failed_at and row.last_failed_at > first_failed_at + timedelta(minutes=59)
    assert row.attempts == 3 and attempts(ns, f"{ns}.always_fails/0@0") == 3


def test_an_old_retry_without_a_history_is_dead_lettered_with_the_attempts_this_version_ran(
    ns: str, worker: support.ServiceProcess, database: None
) -> None:
    first_failed_at = datetime.now(timezone.utc) - timedelta(hours=1)
    message_id = f"{ns}.always_fails/0@1"
    before = time.time()
    send_old_task(ns, "always_fails", old_envelope(f"{ns}.always_fails", 1), {"kb_first_failed_at": first_failed_at.isoformat()})

    recorded = support.wait_until(lambda: recorder.client().get(recorder.key(f"history:{message_id}", ns)), timeout=60,
                                  what="the dead letter's history")
    history = decode_history(json.loads(recorded))  # what travelled in the retries' kwargs, as the record got it
    assert [attempt.number for attempt in history] == [1, 2, 3] == [a["attempt"] for a in attempt_log(ns, message_id)]
    assert all(a.exception_class == "builtins.RuntimeError" and "always fails" in a.exception_message for a in history)
    assert all(a.host.startswith(f"{ns}@") and 0 <= a.seconds < 5 for a in history)  # the worker's node name
    assert before - 1 < history[0].started_at < history[1].started_at < history[2].started_at < time.time() + 1


def test_an_old_requeue_is_handled_and_resolves_its_dead_letter(
    ns: str, worker: support.ServiceProcess, database: None
) -> None:
    topic = f"{ns}.record"
    row = requeued_row(topic, 4, "record")

    send_old_task(ns, "record", old_envelope(topic, 4), {"kb_requeued": True}, requeue=True)

    support.wait_until(lambda: status(row) == FailedMessage.Status.RESOLVED, timeout=60, what="the dead letter to be resolved")
    assert handled(ns, f"{topic}/0@4") == 1
    assert FailedMessage.objects.get(pk=row.pk).resolved_at is not None


def test_an_old_pending_resolve_resolves_without_running_the_handler_again(
    ns: str, worker: support.ServiceProcess, database: None
) -> None:
    topic = f"{ns}.record"
    row = requeued_row(topic, 5, "record")

    send_old_task(
        ns, "record", old_envelope(topic, 5), {"kb_requeued": True, "kb_pending_resolve": True, "kb_store_attempt": 1}, requeue=True
    )

    support.wait_until(lambda: status(row) == FailedMessage.Status.RESOLVED, timeout=60, what="the dead letter to be resolved")
    assert handled(ns, f"{topic}/0@5") == 0


def test_an_old_pending_dead_letter_is_stored_without_running_the_handler_again(
    ns: str, worker: support.ServiceProcess, database: None
) -> None:
    topic = f"{ns}.always_fails"
    first_failed_at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    last_failed_at = datetime(2026, 1, 2, 3, 4, 9, tzinfo=timezone.utc)
    old_record = {  # the previous version's DeadLetterRecord.to_dict()
        "message": {**old_envelope(topic, 2), "attempt": 3},
        "handler": "tests.app.tasks.always_fails", "reason": "retries exhausted after 3 attempt(s)",
        "exception_class": "builtins.RuntimeError", "exception_message": "this handler always fails",
        "traceback": "Traceback (most recent call last):\nRuntimeError: this handler always fails\n",
        "attempts": 3, "first_failed_at": first_failed_at.isoformat(), "last_failed_at": last_failed_at.isoformat(),
    }

    send_old_task(ns, "always_fails", old_envelope(topic, 2), {
        "kb_first_failed_at": first_failed_at.isoformat(), "kb_pending_dead_letter": old_record, "kb_store_attempt": 1,
    })

    row = support.wait_until(lambda: FailedMessage.objects.filter(source_topic=topic).first(), timeout=60, what="the dead letter")
    assert (row.source_partition, row.source_offset, row.handler) == (0, 2, "tests.app.tasks.always_fails")
    assert (row.attempts, row.reason, row.exception_class) == (3, "retries exhausted after 3 attempt(s)", "builtins.RuntimeError")
    assert (row.first_failed_at, row.last_failed_at) == (first_failed_at, last_failed_at)
    assert row.status == FailedMessage.Status.FAILED
    assert row.to_message().key == KEY and row.to_message().value == VALUE and list(row.to_message().headers) == HEADERS
    assert attempts(ns, f"{topic}/0@2") == 0  # the handler did not run again
