"""Edit and replay: correct a failure's JSON payload and requeue the corrected copy (its own permission)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from .. import audit, perms, services
from ..models import FailedMessage


class PayloadForm(forms.Form):
    value = forms.CharField(label="Payload (JSON)", widget=forms.Textarea(attrs={"rows": 20, "cols": 100, "spellcheck": "false"}))

    def clean_value(self) -> bytes:
        """The corrected payload as compact UTF-8 JSON; refused (with where it breaks) when it does not parse."""
        try:
            document = json.loads(self.cleaned_data["value"])
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from error
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def edit_and_replay(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    perms.require(request.user, "edit_and_replay")
    row = get_object_or_404(FailedMessage, pk=pk)
    if row.status != FailedMessage.Status.FAILED:
        return _not_failed(request, row)
    form = PayloadForm(request.POST if request.method == "POST" else None, initial={"value": _editable(row)})
    if form.is_valid():
        try:
            copy = services.edit_and_replay(pk, form.cleaned_data["value"], actor=request.user)
        except services.NotFailed:
            row.refresh_from_db(fields=["status"])
            return _not_failed(request, row)
        except Exception as error:
            messages.error(request, f"Could not requeue the corrected copy: {error!r}. The original stays failed.")
        else:
            audit.log(request.user, [row], f"Edited and replayed as #{copy.pk}")
            audit.log(request.user, [copy], f"Corrected copy of #{row.pk}, requeued to {copy.handler}")
            messages.success(request, f"Requeued a corrected copy (#{copy.pk}) of #{row.pk}; the original is kept as it was.")
            return redirect("admin:kafkabridge_failures_failedmessage_change", copy.pk)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Edit and replay {row}",
        "opts": FailedMessage._meta,
        "original": row,
        "form": form,
    }
    return TemplateResponse(request, "kafkabridge_failures/edit.html", context)


def _not_failed(request: HttpRequest, row: FailedMessage) -> HttpResponse:
    """Back to the failure page: someone acted on it first, or it was never failed."""
    messages.warning(request, f"{row} is {row.get_status_display().lower()}: only failed messages can be edited and replayed.")
    return redirect("admin:kafkabridge_failures_failedmessage_change", row.pk)


def _editable(row: FailedMessage) -> str:
    """The payload as indented JSON to edit, or its text when it is not JSON (the operator fixes it)."""
    value = b"" if row.value is None else bytes(row.value)
    text = value.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text
