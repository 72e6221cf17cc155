"""The change list's filter as a querystring: what bulk actions, exports and failure groups act on.

A bulk action or an export gets the change list's querystring (never a list of ids) and rebuilds the
very queryset the change list showed, through the admin's own ``ChangeList``: the same filters, search
and date hierarchy, so "every failure matching this filter" means what the operator saw.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

from .models import FailedMessage

NOT_FILTERS = {PAGE_VAR, ORDER_VAR, "e", "_changelist_filters", "_popup", "_to_field"}
"""Change-list parameters that choose a page or an order, not which rows."""


def filter_query(params: QueryDict) -> str:
    """The filter part of a change-list querystring, in a canonical order (one job per filter needs one spelling)."""
    pairs = sorted((name, value) for name, values in params.lists() if name not in NOT_FILTERS for value in values)
    return urlencode(pairs)


def matching(model_admin: admin.ModelAdmin, query: str, user: Any) -> QuerySet[FailedMessage]:
    """The failures the change list shows for ``query`` (all pages), as ``user`` sees them.

    Raises ``IncorrectLookupParameters`` for a filter the change list would refuse.
    """
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(query)
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    return changelist.get_queryset(request).order_by()


class FailureGroupFilter(admin.SimpleListFilter):
    """``?fingerprint=<hex>``: the failures of one group (the groups page links here). Shown only when chosen."""

    title = "failure group"
    parameter_name = "fingerprint"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        chosen = self.value()
        return [(chosen, f"group {chosen[:10]}")] if chosen else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[FailedMessage]) -> QuerySet[FailedMessage]:
        return queryset.filter(fingerprint=self.value()) if self.value() else queryset


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The distinct values of an indexed column, read by skipping through its index on PostgreSQL.

    ``SELECT DISTINCT topic`` reads every row (a second or more with 100,000 failures); a recursive
    "loose index scan" reads one index entry per distinct value, which for topics, handlers and
    exception classes is a few dozen. Other databases get the plain DISTINCT.
    """

    MAX_VALUES = 500
    """Values listed at most (the filter's sidebar is no place for more; search finds the rest)."""
    template = "kafkabridge_failures/long_filter.html"
    """More than 15 values scroll in a box rather than making the page thousands of pixels tall."""

    def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        if connections[model._default_manager.db].vendor == "postgresql" and field_path == field.name:
            self.lookup_choices = _loose_index_scan(model._meta.db_table, field.column, model._default_manager.db, self.MAX_VALUES)


def _loose_index_scan(table: str, column: str, alias: str, limit: int) -> list[str]:
    quote = connections[alias].ops.quote_name
    table, column = quote(table), quote(column)
    sql = (
        f"WITH RECURSIVE found(value) AS ("
        f" (SELECT {column} FROM {table} ORDER BY {column} LIMIT 1)"
        f" UNION ALL"
        f" SELECT (SELECT {column} FROM {table} WHERE {column} > found.value ORDER BY {column} LIMIT 1)"
        f" FROM found WHERE found.value IS NOT NULL"
        f") SELECT value FROM found WHERE value IS NOT NULL LIMIT %s"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]
