"""Operator actions on dead letters. The admin calls these; they hold all the logic.

Requeue is claim-then-enqueue: the status change failed → requeued is the atomic claim, so two
operators (or a double submit) requeue a message once. If the enqueue then fails, the claim is
undone and the failure reported. Replay (back to the source topic) is claim-then-produce the same
way: failed → replayed, given back unless Kafka acknowledged the record within ``REPLAY_TIMEOUT``.
Resolve and discard close a failure (failed → resolved / discarded) with the same kind of claim;
edit-and-replay claims the original (failed → edited) and requeues a corrected copy of it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F
from django.utils import timezone

import kafkabridge
from kafkabridge import Producer, Sent, runtime

from .models import FailedMessage, RateLimitSetting

logger = logging.getLogger(__name__)


@dataclass
class RequeueReport:
    requeued: list[FailedMessage] = field(default_factory=list)
    skipped: list[FailedMessage] = field(default_factory=list)
    """Rows that were not in status "failed" (already requeued, resolved or discarded)."""
    errors: list[tuple[FailedMessage, Exception]] = field(default_factory=list)


def requeue(ids: Iterable[int], *, actor: AbstractBaseUser | AnonymousUser | None) -> RequeueReport:
    """Send each failed message back to its handler with fresh attempts."""
    report = RequeueReport()
    app = runtime.celery_app()
    user = actor if actor is not None and actor.is_authenticated else None
    for pk in ids:
        before = FailedMessage.objects.filter(pk=pk).values("requeued_by", "requeued_at").first()
        if before is None:
            continue
        claimed = _claim(pk, user)
        row = FailedMessage.objects.get(pk=pk)
        if not claimed:
            report.skipped.append(row)
            continue
        try:
            kafkabridge.requeue(app, row.to_message(), row.handler)
        except Exception as error:
            logger.exception("requeue of %s failed; it stays failed", row)
            _give_back(pk, before)
            report.errors.append((row, error))
        else:
            report.requeued.append(row)
    return report


def _claim(pk: int, user: AbstractBaseUser | None) -> bool:
    """failed → requeued, atomically: the one claim that two operators clicking at once cannot both win."""
    return bool(FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.FAILED).update(
        status=FailedMessage.Status.REQUEUED,
        requeue_count=F("requeue_count") + 1,
        requeued_by=user,
        requeued_at=timezone.now(),
    ))


def _give_back(pk: int, before: dict[str, Any]) -> None:
    """Undo a claim whose enqueue failed: the row is as it was (who requeued it last, and when, included)."""
    FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.REQUEUED).update(
        status=FailedMessage.Status.FAILED,
        requeue_count=F("requeue_count") - 1,
        requeued_by=before["requeued_by"],
        requeued_at=before["requeued_at"],
    )


@dataclass
class CloseReport:
    closed: list[FailedMessage] = field(default_factory=list)
    skipped: list[FailedMessage] = field(default_factory=list)
    """Rows that were not in status "failed" any more."""


def resolve(ids: Iterable[int], *, actor: AbstractBaseUser | AnonymousUser | None) -> CloseReport:
    """Mark failures resolved without running them again (the problem was fixed some other way)."""
    return _close(ids, FailedMessage.Status.RESOLVED, "resolved_at")


def discard(ids: Iterable[int], *, actor: AbstractBaseUser | AnonymousUser | None) -> CloseReport:
    """Give up on failures for good; the rows stay as the record of what was thrown away."""
    return _close(ids, FailedMessage.Status.DISCARDED, "discarded_at")


def _close(ids: Iterable[int], status: str, stamp: str) -> CloseReport:
    report = CloseReport()
    for pk in ids:
        claimed = FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.FAILED).update(
            status=status, **{stamp: timezone.now()}
        )
        row = FailedMessage.objects.filter(pk=pk).defer("value", "traceback", "history").first()
        if row is not None:
            (report.closed if claimed else report.skipped).append(row)
    return report


class NotFailed(Exception):
    """The failure was not in status "failed" (someone else acted on it first)."""


def edit_and_replay(pk: int, value: bytes | None, *, actor: AbstractBaseUser | AnonymousUser | None) -> FailedMessage:
    """Requeue a corrected copy of a failure with ``value`` as its payload; returns the copy.

    The original is claimed (failed → edited) and kept as it was, linked to the copy; the copy is a
    new row in status "requeued" that the handler's outcome updates (resolved, or failed again).
    Raises :class:`NotFailed` if the original was not failed, or the broker's error (the claim is undone).
    """
    user = actor if actor is not None and actor.is_authenticated else None
    if not FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.FAILED).update(status=FailedMessage.Status.EDITED):
        raise NotFailed(pk)
    original = FailedMessage.objects.get(pk=pk)
    copy = FailedMessage.objects.create(
        source_topic=original.source_topic, source_partition=original.source_partition, source_offset=original.source_offset,
        key=original.key, key_text=original.key_text, value=value, headers=original.headers,
        message_timestamp=original.message_timestamp, handler=original.handler,
        reason=f"corrected copy of #{original.pk} ({original.reason})"[:2000], exception_class=original.exception_class,
        exception_message=original.exception_message, attempts=0, first_failed_at=original.first_failed_at,
        last_failed_at=original.last_failed_at, fingerprint=original.fingerprint, status=FailedMessage.Status.REQUEUED,
        requeue_count=1, requeued_by=user, requeued_at=timezone.now(), corrected_from=original,
    )
    try:
        kafkabridge.requeue(runtime.celery_app(), copy.to_message(), copy.handler)
    except Exception:
        logger.exception("requeue of the corrected copy of %s failed; the original stays failed", original)
        copy.delete()
        FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.EDITED).update(status=FailedMessage.Status.FAILED)
        raise
    return copy


REPLAY_TIMEOUT = 30.0
"""Seconds a replay waits for Kafka's acknowledgement before it reports the record not replayed.
(A record acknowledged later is in the topic all the same: at least once, like everything here.)"""


@dataclass
class ReplayReport:
    replayed: list[tuple[FailedMessage, Sent]] = field(default_factory=list)
    """Each row with where Kafka put the replayed record."""
    skipped: list[FailedMessage] = field(default_factory=list)
    """Rows that were not in status "failed" (already requeued, replayed, resolved or discarded)."""
    errors: list[tuple[FailedMessage, Exception]] = field(default_factory=list)


def replay(
    ids: Iterable[int], *, actor: AbstractBaseUser | AnonymousUser | None, producer: Producer | None = None,
    timeout: float = REPLAY_TIMEOUT,
) -> ReplayReport:
    """Produce each failed message again to its source topic (key, value and headers kept, plus the
    replay headers naming the record and ``actor``); a row turns "replayed" once Kafka has it."""
    report = ReplayReport()
    user = actor if actor is not None and actor.is_authenticated else None
    operator = user.get_username() if user is not None else "system"
    for pk in ids:
        claimed = bool(FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.FAILED).update(status=FailedMessage.Status.REPLAYED))
        row = FailedMessage.objects.filter(pk=pk).first()
        if row is None:
            continue
        if not claimed:
            report.skipped.append(row)
            continue
        try:
            sent = kafkabridge.replay(producer or replay_producer(), row.to_message(), by=operator).result(timeout)
        except Exception as error:
            logger.exception("replay of %s failed; it stays failed", row)
            FailedMessage.objects.filter(pk=pk, status=FailedMessage.Status.REPLAYED).update(status=FailedMessage.Status.FAILED)
            report.errors.append((row, error))
        else:
            report.replayed.append((row, sent))
    return report


_producer: Producer | None = None
_producer_lock = threading.Lock()


def replay_producer() -> Producer:
    """This process's producer for replays, made at first use (after any fork of a web server's workers)."""
    global _producer
    with _producer_lock:
        if _producer is None:
            _producer = Producer()
        return _producer


def apply_rate_limit(setting: RateLimitSetting) -> None:
    """Make ``setting`` the limit running bridges and workers apply (within seconds; raises if Redis refuses)."""
    runtime.rate_limit_overrides().set(setting.name, setting.fields())


def remove_rate_limit(setting: RateLimitSetting) -> None:
    """Back to the limit in the code and settings."""
    runtime.rate_limit_overrides().remove(setting.name)


def effective_rates() -> dict[str, dict[str, Any]]:
    """Bucket name → {rate, at, by} as the running processes last published them; {} when Redis cannot say."""
    try:
        return runtime.rate_limit_overrides().effective()
    except Exception:
        logger.warning("could not read the effective rates from Redis", exc_info=True)
        return {}
