"""Failure groups: failures that differ only in ids are one group, counted, linked to the change list."""

from __future__ import annotations

import re

from kafkabridge.contrib.django.models import FailedMessage
from tests.integration.test_console_support import unique_name, CHANGELIST, operator, save_failure, url


def test_failures_differing_only_in_ids_form_one_group_with_its_count_and_a_link_to_exactly_its_rows(database: None) -> None:
    ns = unique_name()
    # Given three failures of one bug (other ids in the message), and another bug once
    topic = f"{ns}.groups"
    same = [save_failure(topic, offset, message=f"{ns}: order {offset * 7919} has no customer {offset}@example.com")
            for offset in range(3)]
    other = save_failure(topic, 3, message="price missing", exception_class="builtins.KeyError")
    assert len({row.fingerprint for row in same}) == 1 and other.fingerprint != same[0].fingerprint

    # When an operator opens the groups page
    client, _ = operator(f"{ns}-op", "requeue")
    page = client.get(url("groups"), {"topic": topic})
    body = page.content.decode()

    # Then the bug is one row with its count and group actions, and its link lists exactly its failures
    assert page.status_code == 200
    row = re.search(rf'<tr>(?:(?!</tr>).)*fingerprint={same[0].fingerprint}(?:(?!</tr>).)*</tr>', body, re.S)
    assert row is not None and "3 failures" in row.group(0) and "Requeue group" in row.group(0)
    assert "Discard group" not in row.group(0)  # no discard permission
    listing = client.get(CHANGELIST, {"fingerprint": same[0].fingerprint})
    assert listing.status_code == 200
    assert sorted(listing.context["cl"].result_list, key=lambda r: r.pk) == sorted(same, key=lambda r: r.pk)
    assert f"source_topic__exact={topic}" in row.group(0)  # the group's links stay within the topic asked for


def test_a_group_leaves_the_default_list_when_its_failures_are_resolved_but_stays_under_all(database: None) -> None:
    ns = unique_name()
    rows = [save_failure(f"{ns}.groups", offset, message=f"{ns}: timeout after {offset} ms") for offset in range(2)]
    FailedMessage.objects.filter(pk__in=[row.pk for row in rows]).update(status=FailedMessage.Status.RESOLVED)
    viewer, _ = operator(f"{ns}-viewer")

    assert rows[0].fingerprint not in viewer.get(url("groups"), {"topic": f"{ns}.groups"}).content.decode()
    everything = viewer.get(url("groups"), {"status": "all", "topic": f"{ns}.groups"}).content.decode()
    assert rows[0].fingerprint in everything and "Requeue group" not in everything  # view-only: no actions
