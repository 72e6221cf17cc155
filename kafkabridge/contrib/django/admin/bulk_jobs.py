"""Bulk jobs in the admin: read-only, the record of who acted on which filter and how it went."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import BulkJob


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "action", "state", "total", "done", "failed", "skipped", "created_by", "created_at", "progress")
    list_filter = ("action", "state")
    list_select_related = ("created_by",)
    readonly_fields = ("action", "query", "created_by", "state", "total", "done", "failed", "skipped", "max_pk", "cursor",
                       "error", "created_at", "started_at", "finished_at", "heartbeat")

    @admin.display(description="progress page")
    def progress(self, job: BulkJob) -> SafeString:
        return format_html('<a href="{}">progress</a>', reverse("admin:kafkabridge_failures_failedmessage_job", args=[job.pk]))

    def has_view_permission(self, request: HttpRequest, obj: BulkJob | None = None) -> bool:
        return request.user.has_perm("kafkabridge_failures.view_failedmessage") or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs start from the failures' change list

    def has_change_permission(self, request: HttpRequest, obj: BulkJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BulkJob | None = None) -> bool:
        return False
