"""Bulk actions by filter: a job acts on every failure matching a change-list filter, in the background.

Why a thread in the web process and not a Celery task: the console then needs nothing deployed
beside the admin (no worker on a queue of its own that operators must remember to run), and the job
row makes the thread disposable. Progress is saved after every step, and a job whose runner stopped
(the web process restarted) is taken over from its cursor by the next view of its progress page or of
the failures list.
Every step acts through the same atomic claims as one click (failed → requeued/resolved/discarded),
so a row is never acted on twice, and at most one job per (action, filter) is active at a time.

The pace is ``BULK_RATE`` failures per second, so a requeue of thousands does not flood the
handlers' queue ahead of live traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from . import audit, services
from .conf import console_settings
from .filters import matching
from .models import BulkJob, FailedMessage

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=30)
"""A running job without progress for this long has lost its runner and is taken over."""

PAST_TENSE = {BulkJob.Action.REQUEUE: "Requeued", BulkJob.Action.RESOLVE: "Resolved", BulkJob.Action.DISCARD: "Discarded"}


def start(model_admin: admin.ModelAdmin, action: str, query: str, user: Any) -> tuple[BulkJob, bool]:
    """The job of ``action`` on the failures matching ``query``, and whether it is new (False: one was active)."""
    failed = matching(model_admin, query, user).filter(status=FailedMessage.Status.FAILED)
    numbers = failed.aggregate(max_pk=Max("pk"))
    try:
        with transaction.atomic():
            job = BulkJob.objects.create(
                action=action, query=query, created_by=user, total=failed.count(), max_pk=numbers["max_pk"] or 0
            )
    except IntegrityError:  # one is pending or running for this filter already
        existing = BulkJob.objects.filter(action=action, query=query, state__in=BulkJob.ACTIVE).first()
        if existing is None:  # it finished in between: try once more
            return start(model_admin, action, query, user)
        return existing, False
    audit.log(user, [job], f"Started: {job.get_action_display().lower()} {job.total} failed message(s) matching ?{query}")
    spawn(model_admin, job)
    return job, True


def ensure_running(model_admin: admin.ModelAdmin, job: BulkJob) -> None:
    """Give an active job whose runner has gone quiet a new one (its cursor says where to go on)."""
    if not job.finished and (job.heartbeat is None or timezone.now() - job.heartbeat > STALE_AFTER):
        spawn(model_admin, job)


def take_over_stale(model_admin: admin.ModelAdmin) -> None:
    """:func:`ensure_running` for every active job (a handful at most). The failures list calls this, so
    a job outlives a restart of the web process without anyone opening its own page."""
    for job in BulkJob.objects.filter(state__in=BulkJob.ACTIVE):
        ensure_running(model_admin, job)


def spawn(model_admin: admin.ModelAdmin, job: BulkJob) -> None:
    """Run ``job`` on a daemon thread once the transaction that made it is committed."""
    def begin() -> None:
        threading.Thread(target=run, args=(model_admin, job.pk, job.heartbeat), name=f"kafkabridge-bulk-{job.pk}", daemon=True).start()

    transaction.on_commit(begin)


def run(model_admin: admin.ModelAdmin, pk: int, seen_heartbeat: datetime | None) -> None:
    """The runner: claim the job (only if nobody took it since ``seen_heartbeat``), then step to the end."""
    try:
        beat = timezone.now()
        if not BulkJob.objects.filter(pk=pk, state__in=BulkJob.ACTIVE, heartbeat=seen_heartbeat).update(
            state=BulkJob.State.RUNNING, heartbeat=beat, started_at=beat
        ):
            return  # another runner has it
        job = BulkJob.objects.select_related("created_by").get(pk=pk)
        _steps(model_admin, job, beat)
    except Exception as error:
        logger.exception("bulk job %s failed", pk)
        BulkJob.objects.filter(pk=pk).update(state=BulkJob.State.FAILED, error=repr(error)[:2000], finished_at=timezone.now())
    finally:
        connection.close()


def _steps(model_admin: admin.ModelAdmin, job: BulkJob, beat: datetime) -> None:
    options = console_settings()
    rows = matching(model_admin, job.query, job.created_by).filter(status=FailedMessage.Status.FAILED, pk__lte=job.max_pk)
    cursor = job.cursor
    while True:
        began = time.monotonic()
        ids = list(rows.filter(pk__gt=cursor).order_by("pk").values_list("pk", flat=True)[: options.BULK_BATCH])
        if not ids:
            break
        done, failed, skipped = _act(job, ids)
        cursor, new_beat = ids[-1], timezone.now()
        if not BulkJob.objects.filter(pk=job.pk, heartbeat=beat).update(
            done=F("done") + done, failed=F("failed") + failed, skipped=F("skipped") + skipped, cursor=cursor, heartbeat=new_beat
        ):
            return  # taken over (this runner was thought dead): the other one goes on
        beat = new_beat
        time.sleep(max(0.0, len(ids) / options.BULK_RATE - (time.monotonic() - began)))
    job.refresh_from_db()
    left = max(0, job.total - job.done - job.failed - job.skipped)  # rows that stopped being failed before their turn
    BulkJob.objects.filter(pk=job.pk, heartbeat=beat).update(
        state=BulkJob.State.DONE, skipped=F("skipped") + left, finished_at=timezone.now(), heartbeat=timezone.now()
    )


def _act(job: BulkJob, ids: list[int]) -> tuple[int, int, int]:
    """Apply the job's action to ``ids``; (done, failed, skipped). The audit names the job."""
    user = job.created_by
    note = f"{PAST_TENSE[job.action]} (bulk job #{job.pk})"
    if job.action == BulkJob.Action.REQUEUE:
        report = services.requeue(ids, actor=user)
        audit.log(user, report.requeued, note)
        return len(report.requeued), len(report.errors), len(report.skipped)
    close = services.resolve if job.action == BulkJob.Action.RESOLVE else services.discard
    closed = close(ids, actor=user)
    audit.log(user, closed.closed, note)
    return len(closed.closed), 0, len(closed.skipped)
