"""The worker's buffer of final outcomes: written by its thread, taken along by the next begin, kept while Redis is away."""

from __future__ import annotations

import threading

from redis.exceptions import ConnectionError as RedisConnectionError

from kafkabridge import MessageId
from kafkabridge.worker.outcomes import Outcomes
from tests.support import wait_until


class RecordingLedger:
    def __init__(self, failures: int = 0) -> None:
        self.written: list[MessageId] = []
        self.failures = failures
        self.lock = threading.Lock()

    def finish(self, messages: list[MessageId]) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise RedisConnectionError("Redis is away")
            self.written += messages


def at(offset: int) -> MessageId:
    return MessageId("orders", 0, offset)


def test_outcomes_are_written_by_the_thread_in_one_batch() -> None:
    ledger, writer = RecordingLedger(), Outcomes(interval=0.05)
    for offset in range(10):
        writer.add(ledger, at(offset))  # type: ignore[arg-type]
    wait_until(lambda: len(ledger.written) == 10, timeout=5, what="the batch to be written", interval=0.01)
    assert ledger.written == [at(offset) for offset in range(10)]


def test_the_next_begin_takes_the_buffered_outcomes_along_and_may_give_them_back() -> None:
    ledger, writer = RecordingLedger(), Outcomes(interval=60)
    writer.add(ledger, at(1))  # type: ignore[arg-type]
    writer.add(ledger, at(2))  # type: ignore[arg-type]
    taken = writer.take(ledger)  # type: ignore[arg-type]
    assert taken == [at(1), at(2)] and writer.take(ledger) == []  # type: ignore[arg-type]
    writer.give_back(ledger, taken)  # type: ignore[arg-type]
    assert writer.flush() and ledger.written == [at(1), at(2)]


def test_outcomes_wait_in_the_buffer_while_redis_is_away() -> None:
    ledger, writer = RecordingLedger(failures=1), Outcomes(interval=60)
    writer.add(ledger, at(1))  # type: ignore[arg-type]
    assert not writer.flush() and ledger.written == []
    assert writer.flush() and ledger.written == [at(1)]
