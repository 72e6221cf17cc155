"""Failure groups: failures with the same fingerprint, counted, with first/last seen and actions on the group."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import perms
from ..models import FailedMessage

MAX_GROUPS = 200
"""Largest groups shown; a long tail of one-offs is better browsed in the change list."""


def groups(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    perms.require(request.user, "view")
    status = request.GET.get("status", FailedMessage.Status.FAILED)
    rows = FailedMessage.objects.exclude(fingerprint="")
    if status != "all":
        rows = rows.filter(status=status)
    topic = request.GET.get("topic", "")
    if topic:
        rows = rows.filter(source_topic=topic)
    found = list(
        rows.values("fingerprint")
        # COUNT(*), not COUNT(id): the index (status, fingerprint, last/first failed, id) then answers it alone
        .annotate(count=Count("*"), first_seen=Min("first_failed_at"), last_seen=Max("last_failed_at"), sample=Max("pk"))
        .order_by("-count", "-last_seen")[:MAX_GROUPS]
    )
    samples = FailedMessage.objects.only("handler", "exception_class", "exception_message", "reason").in_bulk(
        [group["sample"] for group in found]
    )
    changelist = reverse("admin:kafkabridge_failures_failedmessage_changelist")
    for group in found:
        sample = samples[group["sample"]]
        group["handler"] = sample.handler
        group["handler_name"] = sample.handler.rsplit(".", 1)[-1]  # the full name is its tooltip, as in the change list
        group["exception"] = sample.exception_class.rsplit(".", 1)[-1] or "—"
        group["message"] = sample.exception_message or sample.reason
        narrowed = {"fingerprint": group["fingerprint"], **({"source_topic__exact": topic} if topic else {})}
        group["list_url"] = f"{changelist}?{urlencode({**narrowed, **({} if status == 'all' else {'status__exact': status})})}"
        group["bulk_query"] = urlencode({**narrowed, "status__exact": FailedMessage.Status.FAILED})
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": "Failure groups",
        "opts": FailedMessage._meta,
        "groups": found,
        "status": status,
        "topic": topic,
        "statuses": [("all", "All"), *FailedMessage.Status.choices],
        "kb_can": {action: perms.allowed(request.user, action) for action in ("requeue", "discard")},
    }
    return TemplateResponse(request, "kafkabridge_failures/groups.html", context)
