"""Final outcomes, written to the completion ledger with the next run's ``begin``, or in batches.

A handler run waits for one ledger round trip (``begin``); its final outcome goes into this buffer.
The process's next ``begin`` takes what is buffered along, in the same round trip (so a run that
kills its process cannot lose the outcome of the run before it); a background thread writes what
is left within ``FLUSH_INTERVAL`` when no run follows. The bridge reads outcomes once per commit
interval, so the delay costs nothing there. What it does cost: an outcome still in the buffer when
its process is killed from outside (kill -9, OOM) in those milliseconds is not recorded, and that
message runs once more after its lease runs out, as if the run had died; a process that stops
normally writes its buffer first (Celery's ``worker_process_shutdown`` and ``worker_shutdown``, and
``atexit``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import defaultdict

from celery import signals
from redis.exceptions import RedisError

from ..completion import CompletionLedger
from ..message import MessageId

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.02
"""Seconds an outcome may wait in the process's buffer: the window in which its batch forms."""
RETRY_INTERVAL = 1.0
"""Seconds between tries while Redis cannot be reached (the outcomes stay in the buffer)."""
MAX_BUFFERED = 100_000
"""Outcomes kept while Redis is unreachable; past it the oldest are dropped (their messages may run again)."""


class Outcomes:
    """The buffer of final outcomes of one process and the thread that writes it."""

    def __init__(self, interval: float = FLUSH_INTERVAL) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: dict[CompletionLedger, list[MessageId]] = defaultdict(list)
        self._count = 0
        self._thread: threading.Thread | None = None

    def add(self, ledger: CompletionLedger, message: MessageId) -> None:
        """``message`` is final: written within ``FLUSH_INTERVAL`` (never blocks on Redis)."""
        with self._lock:
            if self._count >= MAX_BUFFERED:
                self._drop_oldest()
            self._pending[ledger].append(message)
            self._count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kafkabridge-outcomes", daemon=True)
                self._thread.start()
            self._wake.notify()

    def take(self, ledger: CompletionLedger) -> list[MessageId]:
        """The buffered outcomes of ``ledger``, removed from the buffer (the caller writes them, or
        gives them back with :meth:`give_back`)."""
        with self._lock:
            messages = self._pending.pop(ledger, [])
            self._count -= len(messages)
        return messages

    def give_back(self, ledger: CompletionLedger, messages: list[MessageId]) -> None:
        """Outcomes :meth:`take` returned that could not be written: the thread tries again."""
        if messages:
            with self._lock:
                self._pending[ledger][:0] = messages
                self._count += len(messages)
                self._wake.notify()

    def flush(self) -> bool:
        """Write what is buffered now, in the caller's thread; False if Redis refused (kept for later)."""
        with self._lock:
            pending, self._pending, self._count = self._pending, defaultdict(list), 0
        failed = False
        for ledger, messages in pending.items():
            try:
                ledger.finish(messages)
            except RedisError as error:
                failed = True
                logger.warning("completion ledger unreachable (%r): %d final outcome(s) wait to be recorded", error, len(messages))
                self.give_back(ledger, messages)
        return not failed

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._count:
                    self._wake.wait()
            time.sleep(self._interval)  # let the batch form
            if not self.flush():
                time.sleep(RETRY_INTERVAL)

    def _drop_oldest(self) -> None:
        ledger, messages = next((item for item in self._pending.items() if item[1]))
        dropped = messages.pop(0)
        self._count -= 1
        logger.error("more than %d final outcomes wait for Redis: %s is dropped from the buffer and may run again", MAX_BUFFERED, dropped)


_outcomes: tuple[int, Outcomes] | None = None


def outcomes() -> Outcomes:
    """This process's writer (a forked pool process gets its own, with its own thread)."""
    global _outcomes
    if _outcomes is None or _outcomes[0] != os.getpid():
        if _outcomes is None:
            _flush_at_exit()
        _outcomes = (os.getpid(), Outcomes())
    return _outcomes[1]


def flush_outcomes(**_: object) -> None:
    """Write this process's buffered outcomes before it stops."""
    if _outcomes is not None and _outcomes[0] == os.getpid():
        _outcomes[1].flush()


def _flush_at_exit() -> None:
    signals.worker_process_shutdown.connect(flush_outcomes, weak=False, dispatch_uid="kafkabridge-outcomes")
    signals.worker_shutdown.connect(flush_outcomes, weak=False, dispatch_uid="kafkabridge-outcomes")
    atexit.register(flush_outcomes)
