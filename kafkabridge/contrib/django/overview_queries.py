"""What the overview page reads from the database: failures per hour per topic, top failure groups, totals.

Every figure is one aggregate query (a handful per page, whatever the number of rows), so the page stays
fast with 100,000 dead letters (``bench/console.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from kafkabridge.dead_letter.fingerprint import normalise

from .charts import Series
from .models import FailedMessage

HOURS = 24
TOP_TOPICS = 7
"""Topics drawn as their own line; the others are summed into one "other topics" line."""
TOP_GROUPS = 10
OTHER_TOPICS = "other topics"


@dataclass(frozen=True)
class Hourly:
    """Dead letters per hour: ``hours`` (the start of each, oldest first) and one series per topic."""

    hours: list[datetime]
    series: list[Series]

    @property
    def rows(self) -> list[tuple[datetime, list[float]]]:
        """Hour by hour, each topic's count (the chart as a table)."""
        return [(hour, [line.values[i] for line in self.series]) for i, hour in enumerate(self.hours)]

    @property
    def total(self) -> int:
        return int(sum(sum(line.values) for line in self.series))


@dataclass(frozen=True)
class Group:
    """Unresolved failures that share a fingerprint (handler, exception class and normalised message)."""

    handler: str
    exception_class: str
    message: str
    count: int
    first_seen: datetime
    last_seen: datetime
    filters: dict[str, str]
    """The change list's query parameters that list exactly this group."""


def hours_ending(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The starts of the last ``hours`` whole or running hours, oldest first (the last one holds ``now``)."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=back) for back in range(hours - 1, -1, -1)]


def rows(topics: Sequence[str] = ()) -> QuerySet[FailedMessage]:
    """Every row, or the rows of ``topics`` when some are named (the page's ``?topic=`` filter)."""
    return FailedMessage.objects.filter(source_topic__in=topics) if topics else FailedMessage.objects.all()


def hourly_failures(now: datetime | None = None, *, topics: Sequence[str] = (), hours: int = HOURS, top: int = TOP_TOPICS) -> Hourly:
    """Rows by the hour of their last failure and by topic, over the last ``hours``; the ``top`` busiest topics
    are lines of their own, the rest one line."""
    starts = hours_ending(now or timezone.now(), hours)
    counts = (
        rows(topics).filter(last_failed_at__gte=starts[0])
        .annotate(hour=TruncHour("last_failed_at"))
        .values_list("source_topic", "hour")
        .annotate(n=Count("*"))
        .order_by()
    )
    by_topic: dict[str, dict[datetime, int]] = {}
    for topic, hour, n in counts:
        by_topic.setdefault(topic, {})[hour] = n
    ranked = sorted(by_topic, key=lambda t: (-sum(by_topic[t].values()), t))
    series = [Series(topic, [by_topic[topic].get(h, 0) for h in starts]) for topic in ranked[:top]]
    if len(ranked) > top:
        rest = ranked[top:]
        series.append(Series(OTHER_TOPICS, [sum(by_topic[t].get(h, 0) for t in rest) for h in starts]))
    return Hourly(starts, series)


def status_totals(topics: Sequence[str] = ()) -> dict[str, int]:
    """Rows per status, every status present (0 when none)."""
    found = dict(rows(topics).values_list("status").annotate(n=Count("*")).order_by())
    return {status: found.get(status, 0) for status in FailedMessage.Status.values}


def top_groups(topics: Sequence[str] = (), limit: int = TOP_GROUPS) -> list[Group]:
    """The largest groups of rows in status failed, largest first (two queries: the groups, then a sample each)."""
    failed = rows(topics).filter(status=FailedMessage.Status.FAILED).exclude(fingerprint="")
    groups = list(
        failed.values("fingerprint")
        .annotate(count=Count("*"), first_seen=Min("first_failed_at"), last_seen=Max("last_failed_at"), sample=Max("pk"))
        .order_by("-count", "-last_seen")[:limit]
    )
    samples = {
        row["pk"]: row
        for row in FailedMessage.objects.filter(pk__in=[g["sample"] for g in groups]).values("pk", "handler", "exception_class", "exception_message")
    }
    return [_group(group, samples[group["sample"]], topics) for group in groups if group["sample"] in samples]


def _group(row: dict[str, Any], sample: dict[str, Any], topics: Sequence[str]) -> Group:
    filters = {"fingerprint": row["fingerprint"], "status__exact": FailedMessage.Status.FAILED}
    if len(topics) == 1:
        filters["source_topic__exact"] = topics[0]
    return Group(
        handler=sample["handler"], exception_class=sample["exception_class"], message=normalise(sample["exception_message"]),
        count=row["count"], first_seen=row["first_seen"], last_seen=row["last_seen"], filters=filters,
    )
