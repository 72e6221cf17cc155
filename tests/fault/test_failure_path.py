"""The way from a failed run to its retry must not lose the message, whatever stalls on it.

A Redis stall while the retry is published lets the soft time limit strike there; Celery then
acknowledges the task (or rejects it without requeue), and with commit-after-publish Kafka no longer
has the message either. The handler task rejects it with requeue instead.
"""

from __future__ import annotations

import json

from dashboard.celery import app
from kafkabridge import Message
from kafkabridge.wire import encode_envelope, task_id
from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig


def journal_kinds(rig: Rig, message_id: str) -> list[str]:
    if not rig.journal.exists():
        return []
    lines = (json.loads(line) for line in rig.journal.read_text().splitlines() if line)
    return [line["e"] for line in lines if line["id"] == message_id]


def test_a_retry_stalled_past_the_soft_time_limit_keeps_the_message(rig: Rig) -> None:
    # Given a worker, and a message as a bridge committing after publish sends it (no ledger behind it)
    rig.start_worker()
    message = Message(topic=f"{rig.ns}.stall", partition=0, offset=0, key=b"m0", value=b'{"id": "m0"}')

    # When its first run fails and the broker's Redis stalls until the soft time limit has struck
    app.send_task("tests.fault.app.tasks.fails_while_redis_stalls", args=[encode_envelope(message)],
                  task_id=task_id(message.id), queue=rig.ns, ignore_result=True)

    # Then the message is not acknowledged away: it is delivered again and handled
    support.wait_until(lambda: "ok" in journal_kinds(rig, "m0"), timeout=plan.STALL_TIME_LIMIT + 40,
                       what="the message to run again after the stall")
    assert journal_kinds(rig, "m0") == ["start", "start", "ok"]
    rig.workers[0].wait_for_log(r"soft time limit struck while its retry was being scheduled|retry could not be published", timeout=5)
