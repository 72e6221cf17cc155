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
