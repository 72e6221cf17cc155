"""Bulk actions by filter: the confirmation page (how many, the cap) and the progress page of the job."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from .. import bulk, perms
from ..conf import console_settings
from ..filters import filter_query, matching
from ..models import BulkJob, FailedMessage

PERMISSION = {BulkJob.Action.REQUEUE: "requeue", BulkJob.Action.RESOLVE: "requeue", BulkJob.Action.DISCARD: "discard"}


def confirm(request: HttpRequest, model_admin: admin.ModelAdmin, action: str) -> HttpResponse:
    """GET: how many failed messages the filter matches, and a button; POST: start (or find) the job."""
    if action not in PERMISSION:
        raise Http404(f"no bulk action {action!r}")
    perms.require(request.user, PERMISSION[action])
    query = filter_query(request.GET)
    try:
        count = matching(model_admin, query, request.user).filter(status=FailedMessage.Status.FAILED).count()
    except IncorrectLookupParameters:
        return HttpResponseBadRequest("This filter is not one the change list accepts.")
    cap = console_settings().BULK_CAP
    if request.method == "POST" and 0 < count <= cap:
        job, new = bulk.start(model_admin, action, query, request.user)
        if not new:
            messages.info(request, f"This {job.get_action_display().lower()} of this filter was already running: here is its progress.")
        return redirect("admin:kafkabridge_failures_failedmessage_job", job.pk)
    verb = BulkJob.Action(action).label
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"{verb} {count} failed message{'' if count == 1 else 's'}?",
        "opts": FailedMessage._meta,
        "action": action,
        "verb": verb,
        "count": count,
        "cap": cap,
        "query": query,
        "active": BulkJob.objects.filter(action=action, query=query, state__in=BulkJob.ACTIVE).first(),
    }
    return TemplateResponse(request, "kafkabridge_failures/bulk_confirm.html", context)


def progress(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    """The job's progress; reloads itself while the job runs (and restarts a runner that went quiet)."""
    perms.require(request.user, "view")
    job = get_object_or_404(BulkJob.objects.select_related("created_by"), pk=pk)
    bulk.ensure_running(model_admin, job)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Bulk job #{job.pk}: {job.get_action_display().lower()}",
        "opts": FailedMessage._meta,
        "job": job,
        "processed": job.done + job.failed + job.skipped,
    }
    return TemplateResponse(request, "kafkabridge_failures/bulk_job.html", context)
