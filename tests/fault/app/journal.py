"""The run's journal: one JSON line per handler run, success and dead letter, appended by every worker process.

It is a file (``KBFAULT_JOURNAL``), not Redis, so that it survives the faults the suite injects into
Redis (a restart without its data, a freeze). Each line is one ``write()`` to a file opened with
``O_APPEND``, so lines of concurrent processes never interleave, and a process killed mid-run leaves
whole lines behind.

Events: ``start`` (a handler run begins: attempt, pid), ``ok`` (the handler succeeded; written before
the worker records the outcome in the ledger), ``dead`` (the dead letter is stored; written after the
store saved it and before the ledger hears of it). Every event has the message's id, its Kafka
position and the time (``time.time()``).
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path

from kafkabridge import Message

VARIABLE = "KBFAULT_JOURNAL"


def message_id(message: Message) -> str:
    """The id the test gave the message (its key)."""
    return (message.key or b"").decode("utf-8", "replace")


def write(event: str, message: Message, **facts: object) -> None:
    line = {"e": event, "id": message_id(message), "p": message.partition, "o": message.offset,
            "a": message.attempt, "pid": os.getpid(), "t": time.time(), **facts}
    os.write(_fd(), (json.dumps(line, separators=(",", ":")) + "\n").encode())


def first_run(message: Message, what: str) -> bool:
    """True for the first run (of any dispatch) that asks about ``what`` for this message: a marker file
    next to the journal, created exclusively, remembers it across processes and re-dispatches."""
    marker = Path(os.environ[VARIABLE]).with_suffix(".markers") / f"{what}-{message_id(message)}"
    marker.parent.mkdir(exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _fd() -> int:
    return _descriptor(os.getpid())


@cache
def _descriptor(pid: int) -> int:
    """One descriptor per process: keyed on the pid, so a forked pool process opens its own."""
    return os.open(os.environ[VARIABLE], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
