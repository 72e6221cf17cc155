"""Rate limits changed at run time, from the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .. import services
from ..models import RateLimitSetting


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
