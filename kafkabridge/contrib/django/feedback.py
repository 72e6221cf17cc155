"""What an operator is told after an action, and what the audit records: shared by one click, list actions and jobs."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest

from . import audit
from .services import CloseReport, RequeueReport


def requeued(request: HttpRequest, report: RequeueReport) -> None:
    audit.log(request.user, report.requeued, lambda row: f"Requeued to {row.handler}")
    if report.requeued:
        messages.success(
            request,
            f"Requeued {len(report.requeued)} message(s) to their handlers. Each row turns 'resolved' when its "
            "handler succeeds, or 'failed' again if it fails once more.",
        )
    if report.skipped:
        messages.warning(
            request, f"Skipped {len(report.skipped)} message(s) not in status 'failed' (already requeued, resolved or discarded)."
        )
    for row, error in report.errors:
        messages.error(request, f"Could not requeue {row}: {error!r}. It stays failed.")


def closed(request: HttpRequest, report: CloseReport, verb: str) -> None:
    """``verb``: "Resolved" or "Discarded"."""
    audit.log(request.user, report.closed, verb)
    if report.closed:
        messages.success(request, f"{verb} {len(report.closed)} message(s).")
    if report.skipped:
        messages.warning(request, f"Skipped {len(report.skipped)} message(s) not in status 'failed'.")
