from __future__ import annotations

import json

from kafkabridge import DeadLetterRecord, Hooks, Message
from kafkabridge.wire import encode_history

from . import recorder


class RecordingHooks(Hooks):
    """Records every retry's countdown, so tests can check it against the policy's bounds, and each dead
    letter's attempt history (the store may not keep it)."""

    def on_retry_scheduled(self, message: Message, handler: str, error: BaseException, countdown: float) -> None:
        recorder.client().rpush(
            recorder.key(f"countdowns:{message.id}"), json.dumps({"attempt": message.attempt, "countdown": countdown})
        )

    def on_dead_lettered(self, record: DeadLetterRecord) -> None:
        recorder.client().set(recorder.key(f"history:{record.message_id}"), json.dumps(encode_history(record.history)))
