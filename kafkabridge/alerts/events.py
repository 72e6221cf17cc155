"""What an alert is made of: events of one kind, topic and exception class, and the group they form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

DEAD_LETTER = "dead_letter"
REQUEUE_FAILED = "requeue_failed"
RATE_LIMITED = "rate_limited"
LAG = "lag"
PRODUCE_FAILED = "produce_failed"
OUTAGE = "outage"
BRIDGE_STOPPED = "bridge_stopped"
KINDS = (DEAD_LETTER, REQUEUE_FAILED, RATE_LIMITED, LAG, PRODUCE_FAILED, OUTAGE, BRIDGE_STOPPED)
"""Every kind of alert; each can be switched off and given a threshold in ``ALERTS["KINDS"]``."""

FAILURE_KINDS = (DEAD_LETTER, REQUEUE_FAILED)
"""Kinds whose events are dead-letter rows, so the admin can list exactly them."""


@dataclass(frozen=True)
class AlertEvent:
    """One occurrence: ``topic`` is the Kafka topic (the service, for outages; the consumer group, for a stopped
    bridge); ``at`` is epoch seconds."""

    kind: str
    topic: str
    exception: str
    at: float
    example: Mapping[str, Any] = field(default_factory=dict)
    member: str | None = None
    """The dead letter's id (``topic/partition@offset``): its later resolution is counted in the group."""

    @property
    def group_id(self) -> str:
        return group_id(self.kind, self.topic, self.exception)


def group_id(kind: str, topic: str, exception: str) -> str:
    return hashlib.sha1(f"{kind}\0{topic}\0{exception}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Group:
    """A group's state as Redis holds it when it is sent: counts, times (epoch seconds), examples."""

    id: str
    kind: str
    topic: str
    exception: str
    count: int
    resolved: int
    first: float
    last: float
    touched: float
    examples: tuple[Mapping[str, Any], ...]
    sent: int = 0
    sent_resolved: int = 0
    message_id: str | None = None
    status: str = "open"
    """``open`` (still happening), ``quiet`` (nothing new for QUIET_AFTER) or ``resolved``."""
