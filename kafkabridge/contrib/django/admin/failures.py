"""Failures in the admin: the change list (filters, bulk actions by filter), the failure page and its buttons."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .. import feedback, overview, payload, perms, services
from ..bulk import take_over_stale
from ..filters import FailureGroupFilter, IndexedValuesFilter
from ..models import FailedMessage
from ..paginator import EstimatedCountPaginator
from ..views import actions, bulk, edit, export, groups, one_click

LARGE_FIELDS = ("key", "value", "headers", "traceback", "history", "exception_message")
"""Never read for the change list: a page of 100 rows must not carry 100 payloads and tracebacks."""


class FailureChangeList(ChangeList):
    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[FailedMessage]:
        return super().get_queryset(request, exclude_parameters).defer(*LARGE_FIELDS)

    def get_ordering(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> list[Any]:
        """With a search, order by the times as expressions no index provides.

        Otherwise PostgreSQL, expecting many matches, walks the last_failed_at index backwards and
        filters row by row (0.5-1 s with 100,000 rows); this way it takes the few trigram matches and
        sorts them (20 ms).
        """
        ordering = super().get_ordering(request, queryset)
        return [_unindexed(field) for field in ordering] if self.query else ordering


@admin.register(FailedMessage)
class FailedMessageAdmin(admin.ModelAdmin):
    list_display = ("record", "handler_name", "exception", "short_reason", "status", "attempts", "requeue_count", "last_failed_at")
    list_filter = ("status", ("source_topic", IndexedValuesFilter), ("handler", IndexedValuesFilter),
                   ("exception_class", IndexedValuesFilter), FailureGroupFilter, "last_failed_at")
    search_fields = ("key_text", "exception_message", "exception_class", "reason")
    # No date_hierarchy: its SELECT DISTINCT date_trunc(...) reads the whole table; the date filter does the job.
    actions = ["requeue_selected", "resolve_selected", "discard_selected", "replay_selected"]
    show_full_result_count = False
    list_per_page = 50  # rendering a row costs about a millisecond of CPU: 50 keep the page well under its budget
    paginator = EstimatedCountPaginator
    fieldsets = [
        ("Source", {"fields": ["record", "message_timestamp", "key_shown", "headers_shown"]}),
        ("Payload", {"fields": ["value_shown"]}),
        ("Failure", {"fields": ["handler", "reason", "exception_class", "exception_message", "attempts",
                                "first_failed_at", "last_failed_at", "group", "traceback_shown"]}),
        ("Attempt history", {"fields": ["attempt_history"]}),
        ("Requeue", {"fields": ["status", "requeue_count", "requeued_by", "requeued_at", "resolved_at", "discarded_at",
                                "corrections"]}),
    ]
    readonly_fields = [field for section in fieldsets for field in section[1]["fields"]]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return FailureChangeList

    def get_urls(self) -> list[URLPattern]:
        def view(function: Any, name: str, route: str) -> URLPattern:
            wrapped = self.admin_site.admin_view(lambda request, *args, **kwargs: function(request, self, *args, **kwargs))
            return path(route, wrapped, name=f"kafkabridge_failures_failedmessage_{name}")

        return [
            *overview.urls(self),
            view(one_click.requeue, "requeue", "<int:pk>/requeue/"),
            view(one_click.resolve, "resolve", "<int:pk>/resolve/"),
            view(one_click.discard, "discard", "<int:pk>/discard/"),
            view(edit.edit_and_replay, "edit", "<int:pk>/edit/"),
            view(groups.groups, "groups", "groups/"),
            view(bulk.confirm, "bulk", "bulk/<str:action>/"),
            view(bulk.progress, "job", "jobs/<int:pk>/"),
            view(export.export, "export", "export/"),
            view(actions.recent, "actions", "actions/"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        take_over_stale(self)  # bulk jobs whose web process restarted go on from their cursor
        return super().changelist_view(request, {**(extra_context or {}), "kb_can": _can(request)})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        row = self.get_object(request, object_id)
        open_ = row is not None and row.status == FailedMessage.Status.FAILED
        can = {name: allowed and open_ for name, allowed in _can(request).items()}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "kb_can": can})

    @admin.display(description="record", ordering="source_topic")
    def record(self, row: FailedMessage) -> str:
        return str(row)

    @admin.display(description="handler", ordering="handler")
    def handler_name(self, row: FailedMessage) -> str:
        return row.handler.rsplit(".", 1)[-1]

    @admin.display(description="exception", ordering="exception_class")
    def exception(self, row: FailedMessage) -> str:
        return row.exception_class.rsplit(".", 1)[-1]

    @admin.display(description="reason")
    def short_reason(self, row: FailedMessage) -> str:
        return row.reason if len(row.reason) <= 80 else row.reason[:79] + "…"

    @admin.display(description="key")
    def key_shown(self, row: FailedMessage) -> SafeString:
        return payload.render(None if row.key is None else bytes(row.key))

    @admin.display(description="value")
    def value_shown(self, row: FailedMessage) -> SafeString:
        return payload.render(None if row.value is None else bytes(row.value))

    @admin.display(description="headers")
    def headers_shown(self, row: FailedMessage) -> SafeString:
        return payload.render_headers(list(row.to_message().headers))

    @admin.display(description="traceback")
    def traceback_shown(self, row: FailedMessage) -> SafeString:
        return format_html('<pre style="{}">{}</pre>', payload.PRE_STYLE, row.traceback or "(none)")

    @admin.display(description="failure group")
    def group(self, row: FailedMessage) -> SafeString:
        if not row.fingerprint:
            return format_html("<em>{}</em>", "none")
        url = reverse("admin:kafkabridge_failures_failedmessage_changelist") + f"?fingerprint={row.fingerprint}"
        return format_html('<a id="kb-group-link" href="{}">all failures of this group</a> <code>{}</code>', url, row.fingerprint[:10])

    @admin.display(description="attempts")
    def attempt_history(self, row: FailedMessage) -> SafeString:
        return payload.render_attempts(row.history)

    @admin.display(description="corrections")
    def corrections(self, row: FailedMessage) -> SafeString:
        links = []
        if row.corrected_from_id is not None:
            links.append(format_html('<a id="kb-corrected-from" href="{}">Corrected from: {} #{}</a>',
                                     _change_url(row.corrected_from_id), row, row.corrected_from_id))
        copies = row.corrected_copies.order_by("pk").values_list("pk", flat=True)
        links.extend(format_html('<a id="kb-corrected-copy" href="{}">Corrected copy: {} #{}</a>', _change_url(pk), row, pk)
                     for pk in copies)
        return format_html_join(format_html("<br>"), "{}", ((link,) for link in links)) if links else format_html("<em>{}</em>", "none")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # dead letters come from handlers, never from a form

    def has_change_permission(self, request: HttpRequest, obj: FailedMessage | None = None) -> bool:
        return False  # the record of a failure is evidence: read-only; actions change status

    def has_delete_permission(self, request: HttpRequest, obj: FailedMessage | None = None) -> bool:
        return False  # a dead letter is the only copy of the message: never deleted from the admin

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return perms.allowed(request.user, "requeue")

    @admin.action(description="Requeue selected failed messages", permissions=["requeue"])
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> None:
        feedback.requeued(request, services.requeue(queryset.values_list("pk", flat=True), actor=request.user))

    @admin.action(description="Resolve selected failed messages (without running them)", permissions=["requeue"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> None:
        feedback.closed(request, services.resolve(queryset.values_list("pk", flat=True), actor=request.user), "Resolved")

    def has_discard_permission(self, request: HttpRequest) -> bool:
        return perms.allowed(request.user, "discard")

    @admin.action(description="Discard selected failed messages", permissions=["discard"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> None:
        feedback.closed(request, services.discard(queryset.values_list("pk", flat=True), actor=request.user), "Discarded")

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return perms.allowed(request.user, "replay")

    @admin.action(description="Replay selected failed messages to their source topic", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> None:
        report = services.replay(queryset.values_list("pk", flat=True), actor=request.user)
        for row, sent in report.replayed:
            self.log_change(request, row, f"Replayed to {sent.topic}/{sent.partition}@{sent.offset}")
        if report.replayed:
            self.message_user(
                request,
                f"Replayed {len(report.replayed)} message(s) to their source topics; every consumer of those topics "
                "reads them again (at new offsets).",
                messages.SUCCESS,
            )
        if report.skipped:
            self.message_user(
                request,
                f"Skipped {len(report.skipped)} message(s) not in status 'failed' (already requeued, replayed, resolved or discarded).",
                messages.WARNING,
            )
        for row, error in report.errors:
            self.message_user(request, f"Could not replay {row}: {error!r}. It stays failed.", messages.ERROR)


def _unindexed(field: Any) -> Any:
    if not isinstance(field, str) or field.lstrip("-") not in ("last_failed_at", "first_failed_at"):
        return field
    name = field.lstrip("-")
    expression = Coalesce(name, name)
    return expression.desc() if field.startswith("-") else expression.asc()


def _can(request: HttpRequest) -> dict[str, bool]:
    return {action: perms.allowed(request.user, action) for action in ("requeue", "discard", "edit_and_replay")}


def _change_url(pk: int) -> str:
    return reverse("admin:kafkabridge_failures_failedmessage_change", args=[pk])
