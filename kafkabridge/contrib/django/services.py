"""Operator actions on dead letters. The admin calls these; they hold all the logic.

Requeue is claim-then-enqueue: the status change failed → requeued is the atomic claim, so two
operators (or a double submit) requeue a message once. If the enqueue then fails, the claim is
undone and the failure reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F
from django.utils import timezone

import kafkabridge
from kafkabridge import runtime

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
