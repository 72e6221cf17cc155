"""Which bridges run now, and what each one holds: a heartbeat per bridge process in Redis.

Every bridge publishes its status every ``STATUS_INTERVAL`` seconds (partitions, their lag, their
effective rate, the flow-control causes holding them) with a TTL of ``TTL_INTERVALS`` intervals;
a clean stop marks it ``"stopping"`` first and removes it at the end; a crashed or killed bridge's
status expires. :func:`live_bridges` reads the board (the admin's overview). The same snapshots reach
the hooks (``on_bridge_status``, ``on_bridge_stopped``): the alerts watch for a bridge that went silent.

The loop only hands a snapshot over every interval (a clock comparison per turn otherwise); a
background thread writes it, so a slow or absent Redis never blocks the loop. A loop that hangs
stops handing snapshots over, and its status expires like that of a dead process.

Key shapes, under ``kafkabridge:bridges`` (the completion ledger's Redis, else the Celery broker):

- ``{prefix}:index``             ZSET    instance → last heartbeat (epoch seconds, Redis' clock)
- ``{prefix}:status:{instance}`` STRING  the status JSON; expires ``TTL_INTERVALS`` intervals after a heartbeat
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from ..settings import BridgeSettings as Settings

__all__ = ["BridgeBoard", "BridgeStatus", "PartitionStatus", "StatusReporter", "board_for", "live_bridges", "reporter_for"]

logger = logging.getLogger(__name__)

PREFIX = "kafkabridge:bridges"
TTL_INTERVALS = 3
"""A status lives this many heartbeat intervals: two heartbeats may be late before a bridge counts as gone."""
FORGET_AFTER = 3_600.0
"""Seconds after which the index forgets a bridge whose status expired (its key is gone long before)."""
REDIS_TIMEOUT = 2.0
"""Seconds per Redis request of the status thread and of readers."""
RUNNING, STOPPING = "running", "stopping"


@dataclass(frozen=True)
class PartitionStatus:
    """One assigned partition: ``lag`` in messages (None until measured), ``effective_rate`` in messages per
    second (None without a rate limit), ``held``: the flow-control causes pausing it now (e.g. "rate limit")."""

    topic: str
    partition: int
    lag: int | None
    effective_rate: float | None
    held: tuple[str, ...]


@dataclass(frozen=True)
class BridgeStatus:
    """One bridge process. Times are epoch seconds; ``last_heartbeat`` is on Redis' clock.
    ``state`` is ``"running"``, or ``"stopping"`` once a clean stop began."""

    instance: str
    host: str
    pid: int
    group: str
    started_at: float
    last_heartbeat: float
    partitions: tuple[PartitionStatus, ...]
    state: str = RUNNING

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, last_heartbeat: float) -> BridgeStatus:
        data = json.loads(text)
        partitions = tuple(
            PartitionStatus(p["topic"], int(p["partition"]), p["lag"], p["effective_rate"], tuple(p["held"]))
            for p in data.get("partitions", ())
        )
        return cls(
            instance=data["instance"], host=data["host"], pid=int(data["pid"]), group=data["group"],
            started_at=float(data["started_at"]), last_heartbeat=last_heartbeat, partitions=partitions,
            state=data.get("state", RUNNING),
        )


class BridgeBoard:
    """The Redis keys of bridge statuses (their shapes are in the module docstring)."""

    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self._redis = client
        self._index, self._status = f"{prefix}:index", f"{prefix}:status:"
        self._beat = client.register_script(_lua("beat"))

    def beat(self, status: BridgeStatus, ttl: float) -> float:
        """Write ``status`` to expire ``ttl`` seconds from now; returns the heartbeat time (Redis' clock)."""
        keys = [self._index, self._status + status.instance]
        return float(self._beat(keys=keys, args=[status.instance, status.to_json(), max(1, int(ttl * 1000)), FORGET_AFTER]))

    def remove(self, instance: str) -> None:
        """A clean stop: the bridge is gone and nobody should be told it vanished."""
        with self._redis.pipeline() as pipe:
            pipe.delete(self._status + instance).zrem(self._index, instance).execute()

    def read(self) -> list[BridgeStatus]:
        """Every bridge whose status has not expired, by group, host and pid."""
        beats = self._redis.zrange(self._index, 0, -1, withscores=True)
        if not beats:
            return []
        texts = self._redis.mget([self._status + _text(instance) for instance, _ in beats])
        found = [BridgeStatus.from_json(text, score) for (_, score), text in zip(beats, texts) if text is not None]
        return sorted(found, key=lambda b: (b.group, b.host, b.pid, b.instance))


class StatusReporter:
    """The bridge's side: :meth:`due` every turn, :meth:`publish` a snapshot when it is; a daemon thread writes it
    to the ``board`` (None: no Redis to write to; the snapshots still reach the hooks)."""

    def __init__(self, board: BridgeBoard | None, *, group: str, interval: float) -> None:
        self.board = board
        self.interval = interval
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.instance = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.group = group
        self.started_at = time.time()
        self._next = 0.0
        self._state = RUNNING
        self._latest: BridgeStatus | None = None
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing_since: float | None = None

    def due(self, now: float) -> bool:
        return now >= self._next

    def publish(self, partitions: tuple[PartitionStatus, ...], now: float) -> BridgeStatus:
        """Hand the loop's snapshot to the writer thread (never blocks on Redis); returns it."""
        self._next = now + self.interval
        status = BridgeStatus(self.instance, self.host, self.pid, self.group, self.started_at, time.time(), partitions, self._state)
        if self.board is None:
            return status
        with self._wake:
            self._latest = status
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_loop, name="kafkabridge-bridge-status", daemon=True)
            self._thread.start()
        return status

    def stopping(self) -> None:
        """A clean stop began: the next snapshot (due at once) says so."""
        self._state = STOPPING
        self._next = 0.0

    def close(self, *, remove: bool = True) -> None:
        """Stop writing; after a clean stop (``remove``) remove this bridge's status (one bounded attempt)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(REDIS_TIMEOUT * 2)
        if not remove or self.board is None:
            return
        try:
            self.board.remove(self.instance)
        except redis.RedisError as error:
            logger.warning("could not remove this bridge's status from Redis (%r); it expires by itself, and may be "
                           "reported as a bridge that stopped unexpectedly", error)

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while self._latest is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                status, self._latest = self._latest, None
            self._write(status)

    def _write(self, status: BridgeStatus) -> None:
        assert self.board is not None
        try:
            self.board.beat(status, self.interval * TTL_INTERVALS)
        except redis.RedisError as error:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                logger.warning("could not publish this bridge's status to Redis (%r); it is tried again every %.0fs",
                               error, self.interval)
            return
        if self._failing_since is not None:
            logger.info("bridge status reaches Redis again after %.0fs", time.monotonic() - self._failing_since)
            self._failing_since = None


def board_for(settings: Settings, broker_url: str | None = None) -> BridgeBoard:
    """The board on ``COMPLETION_REDIS_URL``, else ``broker_url``, else the broker of ``settings.celery_app``."""
    url = settings.completion_redis_url or broker_url or _celery_broker_url(settings)
    return _board(url)


def reporter_for(settings: Settings, broker_url: str) -> StatusReporter:
    """The bridge's reporter, writing to COMPLETION_REDIS_URL, else the broker; to no board (said in the log) when
    neither is Redis."""
    url = settings.completion_redis_url or broker_url
    board = _board(url) if urlparse(url).scheme in ("redis", "rediss", "unix") else None
    if board is None:
        logger.info("this bridge publishes no status for live_bridges: COMPLETION_REDIS_URL is unset and the Celery broker is not Redis")
    return StatusReporter(board, group=settings.group_id, interval=settings.status_interval)


def live_bridges(settings: Settings) -> list[BridgeStatus]:
    """The bridges running now, on the Redis ``settings`` name (``kafkabridge.runtime.current().settings``
    in a configured process). Raises ``redis.RedisError`` when Redis is down."""
    return board_for(settings).read()


@cache
def _board(url: str) -> BridgeBoard:
    # one retry at most, no backoff: a page listing bridges says "Redis is down" within seconds, not after redis-py's backoff
    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT, retry=Retry(NoBackoff(), 1))
    return BridgeBoard(client)


def _celery_broker_url(settings: Settings) -> str:
    from kombu.utils.imports import symbol_by_name

    from ..errors import ConfigurationError

    if not settings.celery_app:
        raise ConfigurationError("bridge statuses live in Redis: set COMPLETION_REDIS_URL or CELERY_APP")
    return str(symbol_by_name(settings.celery_app).conf.broker_url)


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
