"""The completion ledger: the Redis state shared by the bridge and the workers, changed only by Lua scripts.

Every key of one partition of one consumer group shares a hash tag, so each script touches one Redis
Cluster slot. With ``prefix="kafkabridge:completion"`` and ``{G|T|P}`` for group, topic and partition:

==========================  ======  ============================================================
key                         type    holds
==========================  ======  ============================================================
``prefix:{G|T|P}:floor``    STRING  the committed offset; every offset below it is final
``prefix:{G|T|P}:done``     ZSET    final offsets at or above the floor (member = score = offset)
``prefix:{G|T|P}:claims``   ZSET    ``first:last:token`` per claimed range of offsets (score = first):
                                    the dispatch that owns each message; ranges never overlap
``prefix:{G|T|P}:running``  HASH    offset → token of the run in progress
``prefix:{G|T|P}:crashes``  HASH    offset → runs that began and never ended (dead worker, hard time limit)
``prefix:{G|T|P}:attempts`` HASH    offset → handler attempts used (a re-dispatch goes on counting)
``prefix:{G|T|P}:lease``    HASH    offset → Redis-clock milliseconds until which it counts as alive
==========================  ======  ============================================================

Keys expire after ``idle_seconds`` without a write. Losing them all (a Redis restart without its
data) loses no message: the bridge still holds every unfinished one and dispatches it again.

What it costs: a batch the bridge dispatches is one range per partition (one script call per
partition, whatever the batch size); a worker makes one script call before a run (``begin``), and
hands final outcomes to :class:`~kafkabridge.worker.outcomes.Outcomes`, which has its next ``begin``
record them in the same call (or writes them in a batch). A ``begin`` that carries outcomes of other
partitions touches their keys too: the one script call that is not confined to one Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Iterable, Literal, Mapping
from urllib.parse import urlparse

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from ..errors import ConfigurationError
from ..message import MessageId

DEFAULT_PREFIX = "kafkabridge:completion"
DEFAULT_IDLE_SECONDS = 7 * 24 * 3600.0
"""A partition nobody has written to for a week is forgotten (its floor is rewritten at the next commit)."""

PartitionKey = tuple[str, int]
Verdict = Literal["run", "done", "superseded", "busy"]
DEFAULT_RUN_SECONDS = 300.0
"""How long one run may take when neither the handler nor the Celery app sets a time limit."""
_KEYS = ("floor", "done", "claims", "running", "crashes", "attempts", "lease")
_Call = tuple[Script, list[str], list[Any]]


@dataclass(frozen=True, slots=True)
class Begin:
    """What a worker learns before it runs a tracked message."""

    verdict: Verdict
    attempts_used: int
    """Handler attempts spent on this message by earlier dispatches (0 on a first delivery)."""
    crashes: int
    """Runs that began and never ended: the worker process died under them, or Celery's hard time
    limit killed them (counted when the same dispatch begins again, or when the lease ran out)."""
    wait: float = 0.0
    """For "busy": seconds until the older run's lease runs out."""


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """What the bridge learns of its in-flight messages of one partition."""

    done: frozenset[int]
    leases: Mapping[int, float]
    """Offset → seconds until its lease runs out (negative: it ran out); offsets without one are absent."""
    floor_known: bool
    """False when Redis no longer has the partition's floor: its data was lost (or never written)."""


class CompletionLedger:
    """Reads and writes the completion state of one consumer group's partitions in Redis."""

    def __init__(self, redis: Redis, group: str, *, prefix: str = DEFAULT_PREFIX, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self._redis = redis
        self._group = group
        self._prefix = prefix
        self._idle_ms = int(idle_seconds * 1000)
        self._begin = _script(redis, "begin")
        self._retry = _script(redis, "retry")
        self._finish = _script(redis, "finish")
        self._advance = _script(redis, "advance")
        self._claim = _script(redis, "claim")

    def keys(self, topic: str, partition: int) -> dict[str, str]:
        tag = f"{self._prefix}:{{{self._group}|{topic}|{partition}}}"
        return {name: f"{tag}:{name}" for name in _KEYS}

    # -- worker side ---------------------------------------------------------------------------

    def begin(self, message: MessageId, token: str, *, lease_seconds: float, finished: Iterable[MessageId] = ()) -> Begin:
        """Claim a run of ``message`` for dispatch ``token``; a lease of ``lease_seconds`` keeps it alive.

        ``finished``: final outcomes to record first (see :meth:`finish`), in the same script call."""
        k = self.keys(message.topic, message.partition)
        keys = [k["floor"], k["done"], k["claims"], k["running"], k["crashes"], k["attempts"], k["lease"]]
        args: list[Any] = [message.offset, token, _ms(lease_seconds), self._idle_ms, 0]
        for (topic, partition), offsets in _by_partition(finished).items():
            keys += self._finish_keys(topic, partition)
            args += [len(offsets), *offsets]
            args[4] += 1
        verdict, attempts, crashes, wait_ms = self._begin(keys, args)
        return Begin(verdict=_text(verdict), attempts_used=int(attempts), crashes=int(crashes), wait=int(wait_ms) / 1000)  # type: ignore[arg-type]

    def retry_scheduled(self, message: MessageId, token: str, *, attempts: int, lease_seconds: float) -> bool:
        """The run failed and a retry waits; False when another dispatch owns the message now (the
        attempt is recorded all the same)."""
        k = self.keys(message.topic, message.partition)
        keys = [k["claims"], k["running"], k["attempts"], k["lease"]]
        return bool(self._retry(keys, [message.offset, token, attempts, _ms(lease_seconds), self._idle_ms]))

    def finish(self, messages: Iterable[MessageId]) -> None:
        """These messages reached their final outcome; one script call per partition, in one round trip."""
        self._call_all([
            (self._finish, self._finish_keys(topic, partition), [self._idle_ms, *offsets])
            for (topic, partition), offsets in _by_partition(messages).items()
        ])

    def _finish_keys(self, topic: str, partition: int) -> list[str]:
        k = self.keys(topic, partition)
        return [k["floor"], k["done"], k["running"], k["crashes"], k["attempts"], k["lease"]]

    # -- bridge side ---------------------------------------------------------------------------

    def claim(self, dispatches: Mapping[PartitionKey, Iterable[int]], token: str, *, again: bool = False) -> None:
        """Make ``token`` the owner of these offsets before they are published: older copies stand down.

        Each partition's offsets are claimed as contiguous ranges (a fresh batch: one range), one script
        call per partition, all in one round trip. ``again``: the messages were dispatched before, and
        leases that ran out are dropped (see ``claim.lua``).
        """
        calls = []
        for (topic, partition), offsets in dispatches.items():
            ranges = contiguous_ranges(offsets)
            if ranges:
                k = self.keys(topic, partition)
                args = [self._idle_ms, token, int(again), *(bound for pair in ranges for bound in pair)]
                calls.append((self._claim, [k["claims"], k["running"], k["lease"], k["crashes"]], args))
        self._call_all(calls)

    def progress(self, in_flight: Mapping[PartitionKey, list[int]]) -> dict[PartitionKey, PartitionProgress]:
        """Which in-flight offsets are final, and how long the others' leases run, in one round trip."""
        partitions = [tp for tp, offsets in in_flight.items() if offsets]
        if not partitions:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        for topic, partition in partitions:
            offsets = in_flight[(topic, partition)]
            k = self.keys(topic, partition)
            pipe.exists(k["floor"])
            pipe.zrangebyscore(k["done"], min(offsets), max(offsets))
            pipe.hmget(k["lease"], [str(offset) for offset in offsets])
        replies = pipe.execute()
        seconds, micros = replies[0]
        now_ms = seconds * 1000 + micros // 1000
        result = {}
        for index, tp in enumerate(partitions):
            floor_known, done, leases = replies[1 + 3 * index : 4 + 3 * index]
            result[tp] = PartitionProgress(
                done=frozenset(int(offset) for offset in done),
                leases={offset: (int(until) - now_ms) / 1000 for offset, until in zip(in_flight[tp], leases) if until is not None},
                floor_known=bool(floor_known),
            )
        return result

    def advance(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Kafka has these committed offsets (or the bridge was assigned the partitions at them)."""
        calls = []
        for (topic, partition), offset in offsets.items():
            k = self.keys(topic, partition)
            calls.append((self._advance, [k["floor"], k["done"], k["claims"]], [offset, self._idle_ms]))
        self._call_all(calls)

    def _call_all(self, calls: list[_Call]) -> list[Any]:
        """Script calls in one round trip, by EVALSHA; their replies. (A redis-py pipeline of ``Script``
        objects asks SCRIPT EXISTS first, a second round trip each time.) A script Redis forgot (a
        restart) is loaded again and only the calls that failed for it are repeated."""
        if len(calls) <= 1:
            return [script(keys=keys, args=args) for script, keys, args in calls]
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        for index, ((script, keys, args), reply) in enumerate(zip(calls, replies)):
            if isinstance(reply, NoScriptError):
                replies[index] = script(keys=keys, args=args)  # EVALSHA again, EVAL on NOSCRIPT (redis-py loads it)
            elif isinstance(reply, Exception):
                raise reply
        return replies


def _by_partition(messages: Iterable[MessageId]) -> dict[PartitionKey, list[int]]:
    by_partition: dict[PartitionKey, list[int]] = {}
    for message in messages:
        by_partition.setdefault((message.topic, message.partition), []).append(message.offset)
    return by_partition


def contiguous_ranges(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """``[(first, last), ...]`` covering exactly ``offsets``: a fresh batch of one partition is one range."""
    ranges: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if ranges and offset == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], offset)
        else:
            ranges.append((offset, offset))
    return ranges


def ledger_for(group: str, *, url: str | None, broker_url: str) -> CompletionLedger:
    """The ledger of consumer group ``group`` on Redis ``url`` (None: the Celery broker, which must be Redis).

    One client per URL and group per process; redis-py starts a new connection pool after a fork.
    """
    url = url or broker_url
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"completion tracking keeps its ledger in Redis, but the Celery broker is {url.split(':')[0]!r}: set "
            "KAFKABRIDGE['COMPLETION_REDIS_URL'] to a Redis URL, or KAFKABRIDGE['COMMIT_AFTER'] = 'publish'"
        )
    return _ledger(url, group)


@cache
def _ledger(url: str, group: str) -> CompletionLedger:
    client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
    return CompletionLedger(client, group)


def _script(redis: Redis, name: str) -> Script:
    """A Lua script of this package, run by EVALSHA (redis-py falls back to EVAL when Redis lost its cache)."""
    return redis.register_script(resources.files(__package__).joinpath("lua", f"{name}.lua").read_text())


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
