"""Alert groups in Redis, shared by every process: one group per (kind, topic, exception class).

Sentry's digests in small: a group's events are counted into one hash, a schedule says when each group
is next looked at, and whoever looks takes the group's lock, so one group makes one message however many
processes saw its events, and a process that dies mid-window leaves the group for the next one. The
clock is Redis' ``TIME``.

Keys, under ``PREFIX`` (``kafkabridge:alerts``):

- ``{prefix}:g:{gid}`` hash: kind, topic, exception, count, resolved, first/last (event times), opened,
  touched (Redis time of the first and latest add), sent, sent_resolved, sent_at, message_id
- ``{prefix}:x:{gid}`` list: the first EXAMPLES events (JSON)
- ``{prefix}:due`` sorted set: gid → when the group is next looked at
- ``{prefix}:lock:{gid}``: the sender looking at the group now (expires: a dead sender frees it)
- ``{prefix}:m:{topic/partition@offset}``: the group of a dead letter, so its resolution counts (7 days)
- ``{prefix}:hold``: set after a 429, for its ``retry_after``: no process sends meanwhile
- ``{prefix}:gone``: set after a 401/404, for an hour: no process sends, one reported it
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from importlib.resources import files
from typing import Iterable

import redis

from .events import AlertEvent, Group
from .settings import AlertSettings

LOCK_MILLISECONDS = 120_000
"""Longer than one look can take: a request's timeout plus a bounded 429 wait, twice."""
MEMBER_SECONDS = 7 * 24 * 3600


def _script(client: redis.Redis, name: str):  # type: ignore[no-untyped-def]
    return client.register_script(files(__package__).joinpath("lua", f"{name}.lua").read_text())


class AlertGroups:
    """Adds events to groups, claims due groups, settles them after a send. Every change is one Lua script."""

    def __init__(self, client: redis.Redis, settings: AlertSettings) -> None:
        self.client = client
        self.settings = settings
        self.prefix = settings.prefix
        self.due_key = f"{self.prefix}:due"
        self._add, self._resolve = _script(client, "add"), _script(client, "resolve")
        self._claim, self._settle = _script(client, "claim"), _script(client, "settle")

    def add(self, events: Iterable[AlertEvent]) -> None:
        """Record a batch: one script per group in one round trip."""
        by_group: dict[str, list[AlertEvent]] = defaultdict(list)
        for event in events:
            by_group[event.group_id].append(event)
        s = self.settings
        pipe = self.client.pipeline(transaction=False)
        for gid, batch in by_group.items():
            first = batch[0]
            examples = [json.dumps(e.example, default=str) for e in batch[: s.examples]]
            self._add(
                keys=[self._group(gid), f"{self.prefix}:x:{gid}", self.due_key],
                args=[gid, first.kind, first.topic, first.exception, len(batch), min(e.at for e in batch),
                      max(e.at for e in batch), s.window, s.update_interval, s.examples, *examples],
                client=pipe,
            )
            for event in batch:
                if event.member:
                    pipe.set(f"{self.prefix}:m:{event.member}", gid, ex=MEMBER_SECONDS)
        pipe.execute()

    def resolve(self, *, member: str | None = None, gid: str | None = None) -> bool:
        """One dead letter of a group resolved (``member``), or a whole group recovered (``gid``)."""
        key = f"{self.prefix}:m:{member}" if member else ""
        return bool(self._resolve(keys=[key, self.due_key], args=[self.prefix, gid or "", self.settings.update_interval]))

    def claim(self, token: str, limit: int = 20) -> list[str]:
        """Due groups, each now locked by ``token``; none while a 429 holds every sender."""
        gids = self._claim(keys=[self.due_key, f"{self.prefix}:hold"], args=[self.prefix, token, LOCK_MILLISECONDS, limit])
        return [g.decode() if isinstance(g, bytes) else g for g in gids]

    def read(self, gid: str) -> tuple[Group | None, float]:
        """The group as it is now, and Redis' clock (epoch seconds)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self._group(gid)).lrange(f"{self.prefix}:x:{gid}", 0, -1).time()
        raw, examples, (seconds, micros) = pipe.execute()
        now = seconds + micros / 1e6
        if not raw:
            return None, now
        h = {k.decode(): v.decode() for k, v in raw.items()}
        return Group(
            id=gid, kind=h["kind"], topic=h["topic"], exception=h["exception"], count=int(h["count"]),
            resolved=int(h["resolved"]), first=float(h["first"]), last=float(h["last"]),
            touched=float(h.get("touched", h["opened"])), examples=tuple(json.loads(e) for e in examples),
            sent=int(h["sent"]), sent_resolved=int(h["sent_resolved"]), message_id=h.get("message_id"),
        ), now

    def settle(self, gid: str, token: str, action: str, *, sent: int = 0, sent_resolved: int = 0,
               message_id: str | None = None, delay: float = 0.0) -> bool:
        """``sent``: record it and schedule the next look; ``close``: end the group (unless it grew meanwhile);
        ``retry``: look again in ``delay`` seconds. Releases the lock."""
        s = self.settings
        return bool(self._settle(
            keys=[self._group(gid), f"{self.prefix}:x:{gid}", self.due_key, f"{self.prefix}:lock:{gid}"],
            args=[gid, token, action, sent, sent_resolved, message_id or "", s.update_interval, s.quiet_after, delay],
        ))

    def hold(self, seconds: float) -> None:
        """After a 429: no process sends for ``seconds``."""
        self.client.set(f"{self.prefix}:hold", "1", px=max(1, int(seconds * 1000)))

    def mark_gone(self, seconds: float = 3600) -> bool:
        """After a 401/404: True for the one process that should report it."""
        return bool(self.client.set(f"{self.prefix}:gone", "1", ex=int(seconds), nx=True))

    def gone(self) -> bool:
        return bool(self.client.exists(f"{self.prefix}:gone"))

    def _group(self, gid: str) -> str:
        return f"{self.prefix}:g:{gid}"


