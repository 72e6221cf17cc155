"""How far a partition has come, as the bridge reports it to the hooks (metrics, the operator console)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """One partition: committed offset, lowest unfinished offset, messages in flight."""

    committed: int | None
    """The last offset committed to Kafka (the next one to read), None before the first commit."""
    lowest_unfinished: int | None
    """The lowest offset published and not yet final, None when nothing is in flight."""
    in_flight: int
