"""The console's overview page: failures per hour per topic (SVG and table), top failure groups, totals by
status, and the live bridges with their partitions, or why Redis cannot show them. ``?topic=`` keeps each
test to its own rows in the shared database."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
import redis
from confluent_kafka.admin import AdminClient
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import kafkabridge
from kafkabridge import runtime
from kafkabridge.contrib.django import overview_queries
from kafkabridge.contrib.django.models import FailedMessage
from kafkabridge.dead_letter.fingerprint import fingerprint
from tests import support
from tests.app import recorder
from tests.integration.admin_support import admin_client

SVG = "{http://www.w3.org/2000/svg}"
HANDLER = "tests.app.tasks.record"


def overview_url() -> str:
    return reverse("admin:kafkabridge_failures_overview")


def add_rows(topic: str, count: int, *, at: datetime, status: str = FailedMessage.Status.FAILED, handler: str = HANDLER,
             exception_class: str = "builtins.LookupError", message: str = "order {i} not found") -> None:
    """``count`` dead letters of ``topic`` last failed ``at``, as the store writes them (fingerprint included)."""
    first = FailedMessage.objects.filter(source_topic=topic).count()
    FailedMessage.objects.bulk_create(
        FailedMessage(
            source_topic=topic, source_partition=0, source_offset=first + i, key=b"k", value=b"{}", handler=handler,
            reason="retries exhausted", exception_class=exception_class, exception_message=message.format(i=first + i),
            fingerprint=fingerprint(handler, exception_class, message.format(i=first + i)),
            attempts=3, first_failed_at=at - timedelta(minutes=5), last_failed_at=at, status=status,
        )
        for i in range(count)
    )


def page(client: Client, *topics: str) -> str:
    response = client.get(overview_url(), {"topic": list(topics)})
    assert response.status_code == 200
    return response.content.decode()


def svg_of(body: str) -> ET.Element:
    found = re.search(r"<svg [^>]*class=\"kb-chart\".*?</svg>", body, re.S)
    assert found, "no SVG chart on the page"
    return ET.fromstring(found[0])


def table_rows(body: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells (th and td) of the table with ``table_id``."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', body, re.S)
    assert table, f"no table {table_id}"
    body_part = re.search(r"<tbody>(.*?)</tbody>", table[1], re.S)
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body_part[1] if body_part else "", re.S)]


@pytest.fixture
def name() -> str:
    """A prefix for tests that touch only the database (the ``ns`` fixture also sweeps Redis, which takes seconds)."""
    return f"kbo{uuid4().hex[:10]}"


@pytest.fixture
def viewer(name: str, database: None) -> Client:
    return admin_client(f"{name}-viewer")[0]


def test_the_chart_and_its_table_show_each_topics_failures_per_hour(name: str, viewer: Client) -> None:
    # Given failures of two topics in different hours, and one older than the last 24 hours
    hour = timezone.localtime().replace(minute=1, second=0, microsecond=0)
    orders, refunds = f"{name}.orders", f"{name}.refunds"
    add_rows(orders, 3, at=hour - timedelta(hours=2))
    add_rows(orders, 1, at=hour)
    add_rows(refunds, 5, at=hour - timedelta(hours=5))
    add_rows(orders, 7, at=hour - timedelta(hours=30))

    # When an operator opens the overview of those topics
    body = page(viewer, orders, refunds)

    # Then the chart draws one line per topic, busiest first, and names and describes itself
    svg = svg_of(body)
    assert svg.get("role") == "img" and svg.find(f"{SVG}title").text == "Failures per hour, last 24 hours, by topic"
    assert "9 in all" in svg.find(f"{SVG}desc").text
    assert [g.get("data-series") for g in svg.iter(f"{SVG}g") if g.get("data-series")] == [refunds, orders]
    tips = sorted(c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle"))
    assert tips == sorted([f"{orders}: 3 at {hour - timedelta(hours=2):%H:00}", f"{orders}: 1 at {hour:%H:00}",
                           f"{refunds}: 5 at {hour - timedelta(hours=5):%H:00}"])
    # and the table beside it holds the same figures, hour by hour (24 rows), the 30-hour-old ones left out
    rows = {cells[0]: cells[1:] for cells in table_rows(body, "kb-chart-data")}
    assert len(rows) == 24
    assert rows[f"{hour - timedelta(hours=5):%Y-%m-%d %H:00}"] == ["5", "0"]
    assert rows[f"{hour - timedelta(hours=2):%Y-%m-%d %H:00}"] == ["0", "3"]
    assert rows[f"{hour:%Y-%m-%d %H:00}"] == ["0", "1"]
    assert sum(int(n) for cells in rows.values() for n in cells) == 9


def test_topics_past_the_busiest_are_summed_into_one_line(name: str, database: None) -> None:
    now = timezone.localtime()
    topics = [f"{name}.a", f"{name}.b", f"{name}.c", f"{name}.d"]
    for count, topic in zip((5, 4, 2, 1), topics):
        add_rows(topic, count, at=now)

    hourly = overview_queries.hourly_failures(now, topics=topics, top=2)

    assert [(line.name, line.values[-1]) for line in hourly.series] == [(topics[0], 5), (topics[1], 4), ("other topics", 3)]
    assert len(hourly.hours) == 24 and hourly.total == 12


def test_top_groups_count_unresolved_failures_by_fingerprint_with_links_to_exactly_those_rows(name: str, viewer: Client) -> None:
    # Given one bug failing on three orders (one of them resolved since) and another failing once
    topic, now = f"{name}.orders", timezone.now()
    add_rows(topic, 3, at=now - timedelta(minutes=10))
    add_rows(topic, 1, at=now, status=FailedMessage.Status.RESOLVED)
    add_rows(topic, 1, at=now, exception_class="builtins.ValueError", message="bad total -{i}.50")

    body = page(viewer, topic)

    groups = table_rows(body, "kb-top-groups")
    assert [cells[:4] for cells in groups] == [
        [HANDLER, "builtins.LookupError", "order <num> not found", "3"],
        [HANDLER, "builtins.ValueError", "bad total <num>", "1"],
    ]
    link = unescape(re.search(r'<a href="([^"]+)">3</a>', body)[1])
    query = parse_qs(urlsplit(link).query)
    assert query == {"fingerprint": [fingerprint(HANDLER, "builtins.LookupError", "order 0 not found")],
                     "status__exact": ["failed"], "source_topic__exact": [topic]}
    totals = dict(re.findall(r'data-status="(\w+)">(\d+)<', body))
    assert totals["failed"] == "4" and totals["resolved"] == "1" and totals["discarded"] == "0"


def test_a_live_bridge_shows_with_its_partitions_lag_and_the_partition_it_holds(
    ns: str, viewer: Client, kafka_admin: AdminClient, bridges: list, logs: Path
) -> None:
    # Given a bridge allowed 2 messages in flight per partition, whose handler holds every message until released
    topic = f"{ns}.held"
    support.create_topics(kafka_admin, [topic], partitions=2)
    support.produce(topic, [(b"k", b"{}", None)] * 6, partition=0)
    env = support.process_env(ns, extra={"KBTEST_MAX_IN_FLIGHT": "2", "KAFKABRIDGE_STATUS_INTERVAL": "1"})
    bridge = support.start_bridge(ns, [topic], logs, env=env)
    bridges.append(bridge)
    worker = support.start_worker(ns, logs)  # starts while the bridge does
    try:
        # When an operator opens the overview (once the bridge measured the held partition's lag)
        def shown() -> str | None:
            body = page(viewer)
            lags = [cells[3] for cells in table_rows(body, "kb-partitions") if cells[:3] == [ns, topic, "0"]] if "kb-partitions" in body else []
            return body if lags and lags[0].isdigit() else None

        body = support.wait_until(shown, timeout=60, what="the bridge holding partition 0, with its lag, on the overview")

        # Then the bridge is listed with its host and pid, partition 0 is held by the in-flight bound with its lag,
        # and partition 1 is assigned and fetching
        listed = [cells for cells in table_rows(body, "kb-bridges") if cells[0] == ns]
        assert len(listed) == 1 and listed[0][2] == str(bridge.process.pid) and listed[0][6] == "2"
        held = re.search(r'<ul id="kb-held">(.*?)</ul>', body, re.S)[1]
        assert f"{topic}[0] on" in held and "in-flight bound" in held and f"{topic}[1]" not in held
        partitions = {cells[2]: cells for cells in table_rows(body, "kb-partitions") if cells[:2] == [ns, topic]}
        assert set(partitions) == {"0", "1"}
        assert partitions["0"][5] == "in-flight bound" and partitions["1"][5] == "—"
        assert int(partitions["0"][3]) >= 1  # messages not yet taken past the bound
    finally:
        recorder.client().set(recorder.key("released", ns), 1)  # the handler lets go: the bridge's clean stop is quick
        bridge.stop()
        worker.stop()


def test_handler_rates_published_in_the_last_minutes_are_shown_and_older_ones_not(name: str, viewer: Client) -> None:
    overrides = runtime.rate_limit_overrides()
    fresh, stale = f"handler|{name}.fresh", f"handler|{name}.stale"
    overrides.publish_effective({fresh: 12.5}, at=time.time(), by="test")
    overrides.publish_effective({stale: 3.0}, at=time.time() - 3600, by="test")
    try:
        rates = {cells[0]: cells[1] for cells in table_rows(page(viewer, f"{name}.none"), "kb-handler-rates")}
    finally:
        redis.Redis.from_url(support.BROKER_URL).hdel(overrides.effective_key, fresh, stale)

    assert rates[f"{name}.fresh"] == "12.5" and f"{name}.stale" not in rates


@pytest.fixture
def unreachable_bridge_redis() -> Iterator[None]:
    """This process reads the bridges' statuses from a Redis nobody listens on (port 1)."""
    before = runtime.current()
    kafkabridge.configure(replace(before.settings, completion_redis_url="redis://127.0.0.1:1/0"),
                          hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
    yield
    kafkabridge.configure(before.settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)


def test_with_redis_unreachable_the_page_says_so_and_still_shows_the_failures(
    name: str, viewer: Client, unreachable_bridge_redis: None
) -> None:
    topic = f"{name}.orders"
    add_rows(topic, 2, at=timezone.now())

    body = page(viewer, topic)

    error = re.search(r'<p class="errornote" id="kb-bridges-error" role="status">(.*?)</p>', body, re.S)
    assert error and "Redis is unreachable" in error[1]
    assert 'id="kb-bridges"' not in body and 'id="kb-partitions"' not in body
    assert "2 in all" in svg_of(body).find(f"{SVG}desc").text
    assert table_rows(body, "kb-top-groups")[0][3] == "2"


def test_only_staff_with_the_view_permission_see_the_overview(name: str, database: None) -> None:
    staff = User.objects.create_user(f"{name}-staff", password="pw", is_staff=True)
    no_permission = Client()
    no_permission.force_login(staff)

    assert no_permission.get(overview_url()).status_code == 403
    anonymous = Client().get(overview_url())
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_the_admin_index_links_to_the_overview_for_those_who_may_see_it(name: str, viewer: Client) -> None:
    staff = User.objects.create_user(f"{name}-staff", password="pw", is_staff=True)
    no_permission = Client()
    no_permission.force_login(staff)

    assert f'href="{overview_url()}" id="kb-overview-link"' in viewer.get(reverse("admin:index")).content.decode()
    assert "kb-overview-link" not in no_permission.get(reverse("admin:index")).content.decode()
