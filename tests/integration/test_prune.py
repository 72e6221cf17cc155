"""``manage.py prunefailures``: resolved and discarded rows past the age go, in batches; nothing unresolved ever does.

The database is shared with the rest of the suite, so these rows are dated about ten years back and the age is
3650 days: rows other tests write now are never old enough to be touched.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Iterator
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kafkabridge.contrib.django.management.commands.prunefailures import parse_age, prune
from kafkabridge.contrib.django.models import FailedMessage

AGE = "3650d"
OLD, YOUNG = timezone.now() - timedelta(days=4000), timezone.now() - timedelta(days=3000)
Status = FailedMessage.Status


def add_row(topic: str, offset: int, status: str, *, closed_at: object = None, **fields: object) -> FailedMessage:
    closed = {"resolved_at": closed_at} if status == Status.RESOLVED else {"discarded_at": closed_at} if status == Status.DISCARDED else {}
    return FailedMessage.objects.create(
        source_topic=topic, source_partition=0, source_offset=offset, handler="tests.app.tasks.record", reason="r",
        attempts=1, first_failed_at=OLD - timedelta(days=1000), last_failed_at=OLD - timedelta(days=1000), status=status,
        **closed, **fields,
    )


def remaining(topic: str) -> dict[int, str]:
    return dict(FailedMessage.objects.filter(source_topic=topic).values_list("source_offset", "status"))


def run(*args: str) -> str:
    out = StringIO()
    call_command("prunefailures", "--older-than", AGE, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def name() -> str:
    """This test's topic prefix (the ``ns`` fixture would also sweep Redis, which these tests never touch)."""
    return f"kbp{uuid4().hex[:10]}"


@pytest.fixture
def cleaned(name: str, database: None) -> Iterator[None]:
    """Rows of this test that outlive it (a kept one, or all after a failure) would be counted by the next run."""
    yield
    FailedMessage.objects.filter(source_topic=f"{name}.prune", corrected_from__isnull=False).delete()  # copies first
    FailedMessage.objects.filter(source_topic=f"{name}.prune").delete()


@pytest.fixture
def rows(name: str, cleaned: None) -> str:
    """Old resolved and discarded rows (to go), young ones (to stay), and very old unresolved ones (to stay)."""
    topic = f"{name}.prune"
    add_row(topic, 0, Status.RESOLVED, closed_at=OLD)
    add_row(topic, 1, Status.RESOLVED, closed_at=OLD)
    add_row(topic, 2, Status.DISCARDED, closed_at=OLD)
    add_row(topic, 3, Status.RESOLVED, closed_at=YOUNG)
    add_row(topic, 4, Status.DISCARDED, closed_at=YOUNG)
    for offset, status in enumerate([Status.FAILED, Status.REQUEUED, Status.REPLAYED, Status.EDITED], start=5):
        add_row(topic, offset, status)
    return topic


def test_resolved_and_discarded_rows_past_the_age_are_deleted_and_nothing_unresolved_is(rows: str) -> None:
    output = run()

    assert remaining(rows) == {3: Status.RESOLVED, 4: Status.DISCARDED, 5: Status.FAILED, 6: Status.REQUEUED,
                               7: Status.REPLAYED, 8: Status.EDITED}
    assert output.startswith("Deleted 2 resolved and 1 discarded failed message(s) closed before ")
    assert "(older than 3650d)" in output and "unresolved failed message(s)" in output


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(rows: str) -> None:
    output = run("--dry-run")

    assert len(remaining(rows)) == 9
    assert output.startswith("Would delete 2 resolved and 1 discarded") and "Nothing was deleted (--dry-run)." in output


def test_rows_go_in_batches_of_the_batch_size(name: str, cleaned: None) -> None:
    topic = f"{name}.prune"
    for offset in range(5):
        add_row(topic, offset, Status.RESOLVED, closed_at=OLD)

    with CaptureQueriesContext(connection) as queries:
        deleted = prune(Status.RESOLVED, timezone.now() - parse_age(AGE), batch_size=2)

    assert deleted == 5 and remaining(topic) == {}
    assert len([q for q in queries.captured_queries if q["sql"].startswith("DELETE")]) == 3  # 2 + 2 + 1


def test_rows_closed_before_closing_times_were_recorded_count_from_their_last_change(name: str, cleaned: None) -> None:
    topic = f"{name}.prune"
    add_row(topic, 0, Status.RESOLVED)
    add_row(topic, 1, Status.RESOLVED)
    FailedMessage.objects.filter(source_topic=topic, source_offset=0).update(updated_at=OLD)

    run()

    assert remaining(topic) == {1: Status.RESOLVED}  # changed just now: young


def test_an_original_with_an_edited_copy_is_kept_while_the_copy_exists(name: str, cleaned: None) -> None:
    topic = f"{name}.prune"
    original = add_row(topic, 0, Status.RESOLVED, closed_at=OLD)
    add_row(topic, 0, Status.FAILED, corrected_from=original)

    run()

    assert sorted(FailedMessage.objects.filter(source_topic=topic).values_list("status", flat=True)) == [Status.FAILED, Status.RESOLVED]


def test_without_older_than_the_retention_setting_gives_the_age(rows: str, settings: object) -> None:
    settings.KAFKABRIDGE_CONSOLE = {"RETENTION": AGE}  # type: ignore[attr-defined]
    out = StringIO()

    call_command("prunefailures", "--dry-run", stdout=out)

    assert out.getvalue().startswith("Would delete 2 resolved and 1 discarded") and "(older than 3650d)" in out.getvalue()


@pytest.mark.parametrize("age", ["30", "0d", "-1d", "3 days", "d"])
def test_an_age_that_is_not_one_is_refused_with_an_example(age: str) -> None:
    with pytest.raises(CommandError, match=r"write a positive number and a unit \(s, m, h, d or w\), e.g. 30d"):
        call_command("prunefailures", f"--older-than={age}", "--dry-run")


def test_ages_read_in_their_units() -> None:
    assert parse_age("30d") == timedelta(days=30) and parse_age("12h") == timedelta(hours=12)
    assert parse_age("2w") == timedelta(weeks=2) and parse_age("90m") == timedelta(minutes=90) and parse_age("1.5s") == timedelta(seconds=1.5)
