"""The console's overview page: is it getting better? Failures per hour per topic (server-side SVG), the top
failure groups, totals by status, and the live bridges with their lag, effective rates and held partitions.

Served by the FailedMessage admin (``FailedMessageAdmin.get_urls`` adds :func:`urls`), so a project gets it
without editing its urls.py; staff only, with the permission to view failed messages.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from . import overview_bridges, overview_queries
from .charts import line_chart

URL_NAME = "kafkabridge_failures_overview"
"""``reverse("admin:kafkabridge_failures_overview")``: ``<admin>/kafkabridge_failures/failedmessage/overview/``."""


def urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The overview's URL, for the FailedMessage admin's ``get_urls`` (before the admin's own catch-all patterns)."""
    view = model_admin.admin_site.admin_view(partial(overview_view, model_admin=model_admin))
    return [path("overview/", view, name=URL_NAME)]


def overview_view(request: HttpRequest, *, model_admin: ModelAdmin) -> HttpResponse:
    """The page; ``?topic=`` (repeatable) narrows its database figures, never the bridges (they are live state)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.localtime()  # hours cut in the site's time zone, as TruncHour cuts them
    topics = request.GET.getlist("topic")
    hourly = overview_queries.hourly_failures(now, topics=topics)
    changelist = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
    groups = overview_queries.top_groups(topics)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Kafka failures: overview",
        "now": now,
        "hourly": hourly,
        "chart": mark_safe(_chart(hourly)),  # noqa: S308 - charts.line_chart escapes every text it writes
        "topics": topics,
        "totals": [(status, count, _filtered(changelist, topics, status__exact=status))
                   for status, count in overview_queries.status_totals(topics).items()],
        "groups": [(group, f"{changelist}?{urlencode(group.filters)}") for group in groups],
        "changelist": changelist,
        "bridges": overview_bridges.read_bridges(),
    }
    return TemplateResponse(request, "kafkabridge_failures/overview.html", context)


def _filtered(changelist: str, topics: list[str], **filters: str) -> str:
    """The change list filtered by ``filters``, and by the topic when the overview shows one."""
    if len(topics) == 1:
        filters["source_topic__exact"] = topics[0]
    return f"{changelist}?{urlencode(filters)}"


def _chart(hourly: overview_queries.Hourly) -> str:
    first, last = hourly.hours[0], hourly.hours[-1]
    topics = ", ".join(line.name for line in hourly.series) or "none"
    return line_chart(
        hourly.series, [hour.strftime("%H:00") for hour in hourly.hours],
        title="Failures per hour, last 24 hours, by topic",
        description=(f"Dead letters by the hour of their last failure, from {first:%Y-%m-%d %H:00} to {last:%Y-%m-%d %H:59} "
                     f"{first:%Z}: {hourly.total} in all. Topics: {topics}."),
        x_label=f"Hour ({first:%Z})", y_label="Failures per hour",
    )
