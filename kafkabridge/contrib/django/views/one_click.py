"""The failure page's buttons: Requeue, Resolve and Discard of one failure (POST, CSRF, permission-checked)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .. import feedback, perms, services


@require_POST
def requeue(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    perms.require(request.user, "requeue")
    feedback.requeued(request, services.requeue([pk], actor=request.user))
    return _back(pk)


@require_POST
def resolve(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    perms.require(request.user, "requeue")
    feedback.closed(request, services.resolve([pk], actor=request.user), "Resolved")
    return _back(pk)


@require_POST
def discard(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    perms.require(request.user, "discard")
    feedback.closed(request, services.discard([pk], actor=request.user), "Discarded")
    return _back(pk)


def _back(pk: int) -> HttpResponse:
    return redirect("admin:kafkabridge_failures_failedmessage_change", pk)
