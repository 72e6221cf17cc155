"""What each fault-suite message does to its handler, decided by its id alone (pure; the checker reads it too).

Every message carries a unique id, ``m`` and its index in the stream (its key, and ``{"id": ...}`` in
its value). A hash of the id, or its index, decides its fate, so a run of N messages always has the same mix:

- ``fault`` topic: 40% of the messages fail (``ConnectionError``), a third of those once, a third
  twice (both then handled), a third on every attempt (dead-lettered after ``POLICY.max_attempts``);
  every 100th (index 50, 150, ...) works ``LONG_WORK`` seconds, so that a kill can land mid-task on it.
- ``slow`` topic: of every 40 messages, one outlasts the soft time limit on its first run
  (``SoftTimeLimitExceeded``, retried like any error), and one on every run.
- ``hang`` topic: of every 50 messages, one swallows SoftTimeLimitExceeded and runs into the hard
  limit (the pool process is killed) on its first run, and one on every run.
- ``stall`` topic: a message's first run pauses the broker's Redis (``CLIENT PAUSE``) for
  ``STALL_SECONDS`` and fails, so that the soft time limit strikes while its retry is being published.
- ``crash`` topic: every 200th message (index 50, 250, ...) kills its worker process (``os._exit``) on every run.
"""

from __future__ import annotations

import hashlib

from kafkabridge import RetryPolicy

TIME_LIMIT = 5.0
"""Seconds one run of the ``fault`` and ``crash`` handlers may take (soft limit at 4 s, a second before it)."""
COMPLETION_TIMEOUT = 15.0
"""Seconds a published message may wait to start before the bridge dispatches it again."""
POLICY = RetryPolicy(max_attempts=3, base_delay=0.3, max_delay=1.5, jitter=0.2)
"""Retries after about 0.3 s and 0.6 s; the third failure is dead-lettered."""
MAX_CRASHES = 3

FAULT_SHARE = 0.40
WORK = 0.002
LONG_WORK = 1.5

SLOW_TIME_LIMIT = 2.0
"""The ``slow`` handler's hard limit; its soft limit (SoftTimeLimitExceeded) comes at 1 s, a second before it."""
SLOW_COMPLETION_TIMEOUT = 15.0
SLOW_POLICY = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=0.5, jitter=0.2)
SLOW_SLEEP = 4.0
"""Seconds a slow run would take: past the soft and the hard limit."""
HANG_MAX_CRASHES = 2
"""The ``hang`` handler's max_crashes: runs killed by the hard time limit before it is dead-lettered."""

STALL_TIME_LIMIT = 10.0
"""The ``stall`` handler's hard limit; its soft limit comes at 9 s."""
STALL_SECONDS = 9.5
"""How long the ``stall`` handler pauses the broker's Redis on its first run: past the soft limit, short of the hard one."""

ALWAYS = 1_000_000


def index(message_id: str) -> int:
    return int(message_id[1:])


def share(message_id: str, salt: str = "") -> float:
    """A number in [0, 1) that depends on the id alone: the same message gets the same fate in every process."""
    digest = hashlib.sha256(f"{salt}{message_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def failures(message_id: str) -> int:
    """Runs of the ``fault`` handler that fail before one succeeds (``ALWAYS``: every one; it is dead-lettered)."""
    h = share(message_id)
    if h >= FAULT_SHARE:
        return 0
    return (1, 2, ALWAYS)[int(h / FAULT_SHARE * 3)]


def dead_lettered(message_id: str) -> bool:
    """Whether the ``fault`` handler's policy dead-letters this message (it fails more often than allowed)."""
    return failures(message_id) >= POLICY.max_attempts


def long(message_id: str) -> bool:
    """Whether the ``fault`` handler works ``LONG_WORK`` seconds on this message (a kill can land mid-run)."""
    return index(message_id) % 100 == 50


def work(message_id: str) -> float:
    """Seconds one run of the ``fault`` handler works on this message before it succeeds or fails."""
    return LONG_WORK if long(message_id) else WORK


def slowness(message_id: str) -> str:
    """How the ``slow`` handler treats this message: ``"once"``, its first run outlasts the soft limit
    (later runs are fast); ``"always"``, every run does (dead-lettered with SoftTimeLimitExceeded); ``""``: fast."""
    return {5: "once", 15: "always"}.get(index(message_id) % 40, "")


def hang(message_id: str) -> str:
    """How the ``hang`` handler treats this message: ``"once"``, its first run swallows SoftTimeLimitExceeded
    and runs into the hard limit (later runs are fast); ``"always"``, every run does; ``""``: fast."""
    return {5: "once", 25: "always"}.get(index(message_id) % 50, "")


def crashes(message_id: str) -> bool:
    """Whether the ``crash`` handler kills its worker process on every run of this message."""
    return index(message_id) % 200 == 50
