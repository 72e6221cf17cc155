"""Export by filter (JSON lines, raw bytes base64, streamed), roles, the operator-actions page, and the change list at scale."""

from __future__ import annotations

import base64
import json

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kafkabridge.contrib.django.roles import ROLES
from tests.integration.test_console_support import unique_name, CHANGELIST, operator, post, save_failure, url


def test_export_streams_every_failure_of_the_filter_as_json_lines_with_the_raw_bytes_in_base64(database: None) -> None:
    ns = unique_name()
    rows = [save_failure(f"{ns}.export", offset, value=b"\xff\x00raw" + bytes([offset]), key=None if offset else b"k\x00")
            for offset in range(3)]
    save_failure(f"{ns}.other", 0)
    viewer, _ = operator(f"{ns}-viewer")

    response = viewer.get(url("export"), {"source_topic__exact": f"{ns}.export", "p": "5"})

    assert isinstance(response, StreamingHttpResponse) and response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["id"] for line in lines] == [row.pk for row in rows]
    assert [base64.b64decode(line["value"]) for line in lines] == [b"\xff\x00raw\x00", b"\xff\x00raw\x01", b"\xff\x00raw\x02"]
    assert lines[0]["key"] == base64.b64encode(b"k\x00").decode() and lines[1]["key"] is None
    assert lines[0]["headers"] == [["h", base64.b64encode(b"\xff\x00").decode()]] and lines[0]["fingerprint"] == rows[0].fingerprint


def test_the_roles_command_makes_groups_whose_members_get_exactly_their_buttons(database: None) -> None:
    ns = unique_name()
    call_command("kafkabridge_roles", stdout=open("/dev/null", "w"))
    call_command("kafkabridge_roles", stdout=open("/dev/null", "w"))  # again: the same groups
    row = save_failure(f"{ns}.roles", 0)

    shown = {}
    for name in ROLES:
        user = User.objects.create_user(f"{ns}-{name.split()[-1]}", password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name=name))
        client = Client()
        client.force_login(user)
        page = client.get(url("change", row.pk)).content.decode()
        shown[name.split()[-1]] = [label for label in ("Requeue</button>", "Discard</button>", "Edit and replay") if label in page]

    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)
    assert shown == {
        "viewers": [],
        "operators": ["Requeue</button>"],
        "editors": ["Requeue</button>", "Edit and replay"],
        "admins": ["Requeue</button>", "Discard</button>", "Edit and replay"],
    }


def test_the_operator_actions_page_lists_who_did_what(database: None) -> None:
    ns = unique_name()
    row = save_failure(f"{ns}.audit", 0)
    client, user = operator(f"{ns}-op", "requeue")
    post(client, url("resolve", row.pk))

    page = client.get(url("actions"), {"user": user.username}).content.decode()

    assert 'id="kb-actions"' in page and user.username in page and str(row) in page and "Resolved" in page


def test_the_change_list_reads_no_payloads_and_makes_no_query_per_row(database: None) -> None:
    ns = unique_name()
    viewer, _ = operator(f"{ns}-viewer")
    topic = f"{ns}.scale"
    save_failure(topic, 0)

    def list_queries() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert viewer.get(CHANGELIST, {"source_topic__exact": topic}).status_code == 200
        return [query["sql"] for query in queries.captured_queries]

    one = list_queries()
    for offset in range(1, 30):
        save_failure(topic, offset)
    thirty = list_queries()

    assert len(thirty) == len(one)
    listing = next(sql for sql in thirty if sql.startswith('SELECT "kafkabridge_failures_failedmessage"."id"') and "ORDER BY" in sql)
    for large in ('"value"', '"traceback"', '"history"', '"headers"'):
        assert large not in listing


def test_an_unfiltered_large_table_is_counted_from_the_planner_estimate_and_a_filtered_one_exactly(
    database: None, monkeypatch: object
) -> None:
    ns = unique_name()
    from kafkabridge.contrib.django import paginator
    from kafkabridge.contrib.django.models import FailedMessage

    save_failure(f"{ns}.count", 0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE kafkabridge_failures_failedmessage")
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'kafkabridge_failures_failedmessage'::regclass")
        estimate = cursor.fetchone()[0]
    monkeypatch.setattr(paginator, "EXACT_BELOW", 0)  # type: ignore[attr-defined]

    with CaptureQueriesContext(connection) as queries:
        unfiltered = paginator.EstimatedCountPaginator(FailedMessage.objects.order_by("pk"), 100).count
    filtered = paginator.EstimatedCountPaginator(FailedMessage.objects.filter(source_topic=f"{ns}.count").order_by("pk"), 100).count

    assert unfiltered == estimate and not any("COUNT(" in query["sql"] for query in queries.captured_queries)
    assert filtered == 1


def test_the_filter_values_read_through_the_index_are_the_distinct_values(database: None) -> None:
    from kafkabridge.contrib.django.filters import _loose_index_scan
    from kafkabridge.contrib.django.models import FailedMessage

    save_failure(f"{unique_name()}.values", 0, handler="tests.app.tasks.a_handler_of_this_test")

    found = _loose_index_scan(FailedMessage._meta.db_table, "handler", "default", 10_000)

    assert len(found) == len(set(found)) and set(found) == set(FailedMessage.objects.values_list("handler", flat=True))
    assert "tests.app.tasks.a_handler_of_this_test" in found


def test_search_results_keep_the_newest_first_order(database: None) -> None:
    ns = unique_name()
    rows = [save_failure(f"{ns}.search", offset, message=f"{ns} search target {offset}") for offset in range(3)]
    viewer, _ = operator(f"{ns}-viewer")

    listing = viewer.get(CHANGELIST, {"q": f"{ns} search target"})

    assert [row.pk for row in listing.context["cl"].result_list] == [row.pk for row in reversed(rows)]
