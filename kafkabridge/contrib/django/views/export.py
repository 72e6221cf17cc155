"""Export: every failure matching a change-list filter as JSON lines, streamed (raw key and value in base64)."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse

from .. import perms
from ..filters import filter_query, matching
from ..models import FailedMessage

CHUNK_ROWS = 500
"""Rows fetched per round trip of the server-side cursor: memory stays flat whatever the export's size."""


def export(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    perms.require(request.user, "view")
    try:
        rows = matching(model_admin, filter_query(request.GET), request.user)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest("This filter is not one the change list accepts.")
    response = StreamingHttpResponse(_lines(rows), content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="failed-messages.jsonl"'
    return response


def _lines(rows: QuerySet[FailedMessage]) -> Iterator[str]:
    for row in rows.order_by("pk").iterator(chunk_size=CHUNK_ROWS):
        yield json.dumps(as_json(row), ensure_ascii=False) + "\n"


def as_json(row: FailedMessage) -> dict[str, Any]:
    """One exported failure: the Kafka record byte for byte (base64) and every fact about its failure."""
    return {
        "id": row.pk,
        "topic": row.source_topic,
        "partition": row.source_partition,
        "offset": row.source_offset,
        "timestamp": _iso(row.message_timestamp),
        "key": _b64(row.key),
        "value": _b64(row.value),
        "headers": row.headers,
        "handler": row.handler,
        "status": row.status,
        "reason": row.reason,
        "exception_class": row.exception_class,
        "exception_message": row.exception_message,
        "traceback": row.traceback,
        "attempts": row.attempts,
        "history": row.history,
        "fingerprint": row.fingerprint,
        "first_failed_at": _iso(row.first_failed_at),
        "last_failed_at": _iso(row.last_failed_at),
        "requeue_count": row.requeue_count,
        "corrected_from": row.corrected_from_id,
    }


def _b64(data: bytes | memoryview | None) -> str | None:
    return None if data is None else base64.b64encode(bytes(data)).decode("ascii")


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()
