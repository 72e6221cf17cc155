"""Rate-limit events of worker and bridge processes, written to the test's Redis so tests can read them."""

from __future__ import annotations

import json
import os
import time
from typing import Mapping, Sequence

from kafkabridge import Hooks, Message
from tests.app import recorder


class RateLimitHooks(Hooks):
    """Records rate-limit waits (a count per message, and each with its countdown), the bridges' confirmed
    publishes, each degraded/restored event and the lag samples."""

    def on_rate_limited(self, message: Message, handler: str, wait: float) -> None:
        pipe = recorder.client().pipeline()
        pipe.hincrby(recorder.key("waits"), str(message.id), 1)
        pipe.rpush(recorder.key("rate_limited"), f"{time.time():.6f} {wait:.6f} {message.id}")
        pipe.execute()

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        recorder.client().rpush(recorder.key("published"), f"{time.time():.6f} {len(messages)}")

    def on_rate_limit_degraded(self, kind: str, live_instances: int) -> None:
        self._event({"event": "degraded", "kind": kind, "live": live_instances})

    def on_rate_limit_restored(self, kind: str) -> None:
        self._event({"event": "restored", "kind": kind})

    def on_partition_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        sample = {f"{t}/{p}": lag for (t, p), lag in lags.items()}
        recorder.client().rpush(recorder.key("lag"), json.dumps({"at": time.time(), "lags": sample}))

    def _event(self, facts: dict) -> None:
        recorder.client().rpush(recorder.key("limiter"), json.dumps({**facts, "pid": os.getpid(), "at": time.time()}))


def waits(ns: str) -> dict[str, int]:
    """Rate-limit waits per message id."""
    return {k.decode(): int(v) for k, v in recorder.client().hgetall(recorder.key("waits", ns)).items()}


def rate_limited(ns: str) -> list[tuple[float, float, str]]:
    """(wall-clock time, countdown, message id) of every rate-limit wait, in order."""
    entries = (entry.decode().split(" ", 2) for entry in recorder.client().lrange(recorder.key("rate_limited", ns), 0, -1))
    return [(float(at), float(countdown), message_id) for at, countdown, message_id in entries]


def lateness(ns: str) -> list[float]:
    """Per message that waited for a token and then ran: seconds between the end of its last wait and its start."""
    due = {message_id: at + countdown for at, countdown, message_id in rate_limited(ns)}
    return sorted(at - due[message_id] for at, message_id in recorder.started(ns) if message_id in due)


def published(ns: str) -> list[float]:
    """When the bridges' publishes were confirmed (wall clock), once per message, in order."""
    entries = (entry.decode().split(" ") for entry in recorder.client().lrange(recorder.key("published", ns), 0, -1))
    return [float(at) for at, count in entries for _ in range(int(count))]


def limiter_events(ns: str) -> list[dict]:
    return [json.loads(entry) for entry in recorder.client().lrange(recorder.key("limiter", ns), 0, -1)]
