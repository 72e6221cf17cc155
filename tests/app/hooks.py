from __future__ import annotations

import json

from kafkabridge import Hooks, Message

from . import recorder


class RecordingHooks(Hooks):
    """Records every retry's countdown, so tests can check it against the policy's bounds."""

    def on_retry_scheduled(self, message: Message, handler: str, error: BaseException, countdown: float) -> None:
        recorder.client().rpush(
            recorder.key(f"countdowns:{message.id}"), json.dumps({"attempt": message.attempt, "countdown": countdown})
        )
