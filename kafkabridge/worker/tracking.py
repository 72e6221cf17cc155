"""What a handler task tells the completion ledger: a run began, a retry waits, the outcome is final.

Every call is a no-op for a task no ledger tracks (commit-after-publish, a requeue). A ledger that
cannot be reached never blocks handling: the run goes ahead (a duplicate is possible, a loss is
not: the bridge still holds the message and dispatches it again when nobody reports an outcome).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from .. import runtime
from ..completion import DEFAULT_RUN_SECONDS, Begin, CompletionLedger
from ..message import MessageId
from ..wire import Delivery
from .outcomes import outcomes

logger = logging.getLogger(__name__)

UNTRACKED = Begin(verdict="run", attempts_used=0, crashes=0)


class Tracking:
    """The ledger's side of one handler task run."""

    def __init__(self, ledger: CompletionLedger | None, message_id: MessageId, delivery: Delivery, run_seconds: float, grace: float) -> None:
        self._ledger = ledger
        self._id = message_id
        self._token = delivery.token or ""
        self._run_seconds = run_seconds
        self._grace = grace

    @classmethod
    def of(cls, task: Any, message_id: MessageId, delivery: Delivery) -> Tracking:
        run_seconds = float(task.time_limit or task.app.conf.task_time_limit or DEFAULT_RUN_SECONDS)
        ledger = runtime.completion_ledger(task.app, delivery.group) if delivery.tracked and delivery.group else None
        grace = runtime.current().settings.lease_grace if ledger is not None else 0.0
        return cls(ledger, message_id, delivery, run_seconds, grace)

    @property
    def tracked(self) -> bool:
        return self._ledger is not None

    def begin(self) -> Begin:
        """May this copy run the handler, with how many attempts and crashes behind it?"""
        if self._ledger is None:
            return UNTRACKED
        finished = outcomes().take(self._ledger)  # the outcomes of this process's earlier runs ride along
        try:
            return self._ledger.begin(self._id, self._token, lease_seconds=self._run_seconds + self._grace, finished=finished)
        except RedisError as error:
            outcomes().give_back(self._ledger, finished)
            logger.warning("completion ledger unreachable (%r): running %s without its deduplication", error, self._id)
            return UNTRACKED

    def waiting(self, attempts: int, countdown: float) -> bool:
        """A retry waits ``countdown`` seconds; False when a newer dispatch owns the message (stand down)."""
        if self._ledger is None:
            return True
        lease = countdown + self._run_seconds + self._grace
        try:
            return self._ledger.retry_scheduled(self._id, self._token, attempts=attempts, lease_seconds=lease)
        except RedisError as error:
            logger.warning("completion ledger unreachable (%r): the retry of %s waits without a lease", error, self._id)
            return True

    def finished(self) -> None:
        """The outcome is final: the bridge may commit past this message, and copies of it stand down.

        Written with this process's next ``begin``, or within :data:`~kafkabridge.worker.outcomes.FLUSH_INTERVAL`;
        the run does not wait for it."""
        if self._ledger is not None:
            outcomes().add(self._ledger, self._id)
