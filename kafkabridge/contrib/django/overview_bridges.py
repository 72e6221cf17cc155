"""What the overview page reads from Redis: live bridges, their partitions (lag, effective rate, holds) and
the handlers' effective rates. Redis being down is a fact to show, never an error page."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import redis

from kafkabridge import runtime
from kafkabridge.errors import ConfigurationError
from kafkabridge.observability.bridges import BridgeStatus, PartitionStatus, live_bridges

from . import services

logger = logging.getLogger(__name__)

RATES_FRESH_FOR = 300.0
"""Seconds a handler's published effective rate is shown: an older one is of a handler no worker runs now."""


@dataclass(frozen=True)
class BridgeRow:
    """One live bridge, with its times made readable (``heartbeat_age`` in seconds, as of the read)."""

    status: BridgeStatus
    started: datetime
    heartbeat_age: float


@dataclass(frozen=True)
class PartitionRow:
    """One assigned partition with the bridge that holds it."""

    bridge: BridgeStatus
    partition: PartitionStatus


@dataclass(frozen=True)
class Bridges:
    """Live bridges and their partitions; ``error`` says why there are none to show when Redis could not answer."""

    bridges: list[BridgeRow] = field(default_factory=list)
    partitions: list[PartitionRow] = field(default_factory=list)
    handler_rates: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def held(self) -> list[PartitionRow]:
        """Partitions a flow-control gate pauses now (in-flight bound, rate limit, broker outage…)."""
        return [row for row in self.partitions if row.partition.held]


def read_bridges() -> Bridges:
    """The bridges' board and the effective handler rates, or the reason Redis could not give them."""
    try:
        bridges = live_bridges(runtime.current().settings)
    except redis.RedisError as error:
        logger.warning("the overview could not read the live bridges from Redis", exc_info=True)
        return Bridges(error=f"Redis is unreachable, so live bridges, lag and held partitions cannot be shown ({error}).")
    except ConfigurationError as error:
        return Bridges(error=f"Bridge statuses cannot be read: {error}.")
    partitions = [
        PartitionRow(bridge, partition)
        for bridge in bridges
        for partition in sorted(bridge.partitions, key=lambda p: (p.topic, p.partition))
    ]
    now = time.time()
    rates = {name.split("|", 1)[1]: float(entry["rate"]) for name, entry in services.effective_rates().items()
             if name.startswith("handler|") and now - float(entry.get("at", 0)) <= RATES_FRESH_FOR}
    rows = [BridgeRow(bridge, datetime.fromtimestamp(bridge.started_at, tz=timezone.utc), max(0.0, now - bridge.last_heartbeat))
            for bridge in bridges]
    return Bridges(bridges=rows, partitions=partitions, handler_rates=dict(sorted(rates.items())))
