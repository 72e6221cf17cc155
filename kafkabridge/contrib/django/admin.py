"""Browse dead letters and requeue them. A thin layer: every action calls a function in services.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from . import payload, services
from .models import FailedMessage, RateLimitSetting


@admin.register(FailedMessage)
class FailedMessageAdmin(admin.ModelAdmin):
    list_display = ("record", "handler_name", "exception", "short_reason", "status", "attempts", "requeue_count", "last_failed_at")
    list_filter = ("status", "source_topic", "handler", "exception_class", "last_failed_at")
    search_fields = ("key_text", "exception_message", "exception_class", "reason")
    date_hierarchy = "last_failed_at"
    actions = ["requeue_selected", "replay_selected"]
    fieldsets = [
        ("Source", {"fields": ["record", "message_timestamp", "key_shown", "headers_shown"]}),
        ("Payload", {"fields": ["value_shown"]}),
        ("Failure", {"fields": ["handler", "reason", "exception_class", "exception_message", "attempts",
                                "first_failed_at", "last_failed_at", "traceback_shown"]}),
        ("Requeue", {"fields": ["status", "requeue_count", "requeued_by", "requeued_at", "resolved_at"]}),
    ]
    readonly_fields = [field for section in fieldsets for field in section[1]["fields"]]

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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # dead letters come from handlers, never from a form

    def has_change_permission(self, request: HttpRequest, obj: FailedMessage | None = None) -> bool:
        return False  # the record of a failure is evidence: read-only; actions change status

    def has_delete_permission(self, request: HttpRequest, obj: FailedMessage | None = None) -> bool:
        return False  # a dead letter is the only copy of the message: never deleted from the admin

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{FailedMessage._meta.app_label}.requeue_failedmessage")

    @admin.action(description="Requeue selected failed messages", permissions=["requeue"])
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> None:
        report = services.requeue(queryset.values_list("pk", flat=True), actor=request.user)
        for row in report.requeued:
            self.log_change(request, row, f"Requeued to {row.handler}")
        if report.requeued:
            self.message_user(
                request,
                f"Requeued {len(report.requeued)} message(s) to their handlers. Each row turns 'resolved' when its "
                "handler succeeds, or 'failed' again if it fails once more.",
                messages.SUCCESS,
            )
        if report.skipped:
            self.message_user(
                request,
                f"Skipped {len(report.skipped)} message(s) not in status 'failed' (already requeued, resolved or discarded).",
                messages.WARNING,
            )
        for row, error in report.errors:
            self.message_user(request, f"Could not requeue {row}: {error!r}. It stays failed.", messages.ERROR)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{FailedMessage._meta.app_label}.replay_failedmessage")

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


@admin.register(RateLimitSetting)
class RateLimitSettingAdmin(admin.ModelAdmin):
    """Rate limits changed at run time: saving applies them to running bridges and workers within seconds."""

    list_display = ("name", "rate", "burst", "max_rate", "effective", "updated_at")
    list_filter = ("kind",)
    fields = ("kind", "target", "rate", "burst", "max_rate", "lag_threshold", "lag_scale")

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):  # type: ignore[no-untyped-def]
        self._effective = services.effective_rates()  # one read of Redis per page
        return super().changelist_view(request, extra_context)

    @admin.display(description="effective now")
    def effective(self, row: RateLimitSetting) -> str:
        prefix = "partition|" if row.kind == RateLimitSetting.Kind.TOPIC else "handler|"
        found = {name: entry for name, entry in getattr(self, "_effective", {}).items() if name.startswith(prefix)}
        if row.kind == RateLimitSetting.Kind.TOPIC:
            found = {name: e for name, e in found.items() if name.split("|")[2] == row.target}
            rates = [f"[{name.rsplit('|', 1)[1]}] {e['rate']:.1f}/s" for name, e in sorted(found.items())]
        else:
            rates = [f"{e['rate']:.1f}/s" for name, e in found.items() if name == f"handler|{row.target}"]
        return ", ".join(rates) or "—"

    def save_model(self, request: HttpRequest, obj: RateLimitSetting, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        try:
            services.apply_rate_limit(obj)
        except Exception as error:
            self.message_user(request, f"Saved, but not applied: Redis refused it ({error!r}). Save it again once Redis is back.", messages.ERROR)
        else:
            self.message_user(request, f"{obj.name}: running bridges and workers apply {obj.rate:g}/s within seconds.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: RateLimitSetting) -> None:
        services.remove_rate_limit(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RateLimitSetting]) -> None:
        for obj in queryset:
            services.remove_rate_limit(obj)
        super().delete_queryset(request, queryset)
