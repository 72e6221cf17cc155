"""Recent operator actions: the admin log of the console's models, newest first, with who did what."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from .. import perms
from ..models import BulkJob, FailedMessage

SHOWN = 200


def recent(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    perms.require(request.user, "view")
    types = ContentType.objects.get_for_models(FailedMessage, BulkJob, for_concrete_models=False).values()
    entries = LogEntry.objects.filter(content_type__in=types).select_related("user", "content_type")
    if request.GET.get("user"):
        entries = entries.filter(user__username=request.GET["user"])
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": "Operator actions",
        "opts": FailedMessage._meta,
        "entries": entries.order_by("-action_time")[:SHOWN],
        "shown": SHOWN,
    }
    return TemplateResponse(request, "kafkabridge_failures/actions.html", context)
