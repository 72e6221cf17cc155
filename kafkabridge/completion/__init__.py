"""Completion tracking: Kafka stays the source of truth until a message's outcome is final.

Workers record in Redis when a message's outcome is final (handled, or stored as a dead letter) and keep
a lease while it runs or waits for a retry; the bridge reads that back, commits a partition's offset
only below the first unfinished message, and dispatches again what nobody holds any more.
"""

from .ledger import DEFAULT_RUN_SECONDS, Begin, CompletionLedger, PartitionProgress, ledger_for
from .progress import Progress

__all__ = ["Progress", "DEFAULT_RUN_SECONDS", "Begin", "CompletionLedger", "PartitionProgress", "ledger_for"]
