"""Who notices a bridge that stopped unexpectedly: every alert sender, and exactly one of them reports it.

A bridge with alerts on records a heartbeat in the alerts' Redis with each of its status snapshots
(``on_bridge_status``, every ``STATUS_INTERVAL``) and says it left on a clean stop (``on_bridge_stopped``).
The sender thread of every process with alerts on (bridges and workers alike, so the last bridge's
death is noticed too) asks every few seconds for bridges silent longer than the kind's threshold; the
Lua script hands each one to a single caller, and the group (kind, consumer group) makes one message
of several. Why not the other bridges alone: the last one standing would die unnoticed. Why not the
status board of :mod:`kafkabridge.observability.bridges`: the watch lives under the alerts' PREFIX, so
deployments (and test runs) sharing one Redis report their own bridges only.

Keys, under the alerts' ``PREFIX``:

- ``{prefix}:bridges``              ZSET    instance → last heartbeat (epoch seconds, Redis' clock)
- ``{prefix}:bridges:who``          HASH    instance → identity JSON (group, host, pid)
- ``{prefix}:bridges:left:{instance}``  STRING  a clean stop (an hour): a late heartbeat does not bring it back
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import redis

LEFT_SECONDS = 3600


class BridgeWatch:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self._bridges, self._who, self._left = f"{prefix}:bridges", f"{prefix}:bridges:who", f"{prefix}:bridges:left:"
        self._beat = client.register_script(_lua("watch_beat"))
        self._silent = client.register_script(_lua("watch_silent"))

    def beat(self, instance: str, identity: dict[str, Any]) -> None:
        self._beat(keys=[self._bridges, self._who, self._left + instance], args=[instance, json.dumps(identity)])

    def left(self, instance: str) -> None:
        """A clean stop: this bridge is not to be reported."""
        with self.client.pipeline() as pipe:
            pipe.set(self._left + instance, "1", ex=LEFT_SECONDS).zrem(self._bridges, instance).hdel(self._who, instance).execute()

    def silent(self, after: float) -> list[tuple[dict[str, Any], float]]:
        """Bridges without a heartbeat for ``after`` seconds: (identity, last heartbeat), each to one caller only."""
        flat = self._silent(keys=[self._bridges, self._who], args=[after])
        return [(json.loads(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]


def _lua(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text()
