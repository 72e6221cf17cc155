"""Operators change a limit in the Django admin; running bridges and workers apply it within 5 s (item 7)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from kafkabridge.contrib.django.models import RateLimitSetting
from kafkabridge.ratelimit.overrides import Overrides
from tests import support
from tests.app import recorder
from tests.ratelimit import rig
from tests.ratelimit.app.hooks import published
from tests.ratelimit.app.tasks import task_name
from tests.ratelimit.rates import count_between, per_second

ADD = reverse("admin:kafkabridge_failures_ratelimitsetting_add")
CHANGELIST = reverse("admin:kafkabridge_failures_ratelimitsetting_changelist")
APPLIED_WITHIN = 5.0
"""The issue's bound: seconds from the operator's save until running processes apply the new limit."""
OLD_RATE, NEW_RATE = 5.0, 25.0
NEW_RATE_SHARE = 0.75
"""From the bound on, at least this share of the new rate (a handler start is a worker's pick-up after the grant)."""


@pytest.fixture
def operator(ns: str, database: None) -> Iterator[Client]:
    """A staff user allowed to add, change and view rate limits (not a superuser); its rows are removed after."""
    user = User.objects.create_user(f"{ns}-ops", password="pw", is_staff=True)
    for action in ("add", "change", "view"):
        user.user_permissions.add(Permission.objects.get(codename=f"{action}_ratelimitsetting"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    yield client
    RateLimitSetting.objects.filter(target__contains=ns).delete()
    LogEntry.objects.filter(user=user).delete()
    user.delete()


def save_limit(client: Client, kind: str, target: str, **fields: float) -> float:
    """POST the admin's add form as an operator does; returns when the save answered (wall clock)."""
    page = client.get(ADD)
    assert page.status_code == 200
    form = {"kind": kind, "target": target, "rate": "", "burst": "", "max_rate": "", "lag_threshold": "", "lag_scale": "",
            **{name: str(value) for name, value in fields.items()}, "csrfmiddlewaretoken": page.cookies["csrftoken"].value, "_save": "Save"}
    response = client.post(ADD, form)
    saved_at = time.time()
    assert response.status_code == 302, response.content.decode()[:2000]
    return saved_at


def rate_between(times: list[float], start: float, end: float) -> float:
    return count_between(times, start, end) / (end - start)


def test_a_topic_limit_raised_in_the_admin_applies_to_a_running_bridge_within_5_seconds(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, operator: Client, broker
) -> None:
    # Given a running bridge holding a partition's backlog to 5/s (no worker: publishes are counted at the bridge)
    topic = f"{ns}.timed"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(rate_limits={topic: {"RATE": OLD_RATE, "BURST": OLD_RATE}})
    processes.extend(rig.start(ns, logs, env, topics=[topic], workers=0))
    support.produce(topic, ((b"k", b"{}", None) for _ in range(500)), partition=0)
    support.wait_until(lambda: len(published(ns)) >= 25, timeout=30, what="the backlog flowing at the old rate")

    # When an operator raises the topic's rate to 25/s (burst 25) in the admin
    saved_at = save_limit(operator, "topic", topic, rate=NEW_RATE, burst=NEW_RATE)
    support.wait_until(lambda: time.time() > saved_at + APPLIED_WITHIN + 2.0, timeout=15, what="the change to apply")

    # Then from 5 s after the save on, the partition is published at the new rate; the change is in the admin
    # log, and the change list shows the rate the bridge applies
    times = published(ns)
    before, after = rate_between(times, saved_at - 3, saved_at), rate_between(times, saved_at + APPLIED_WITHIN, saved_at + APPLIED_WITHIN + 2)
    facts = (f"published per second from 3 s before the save: {per_second(times, saved_at - 3, saved_at + APPLIED_WITHIN + 2)}; "
             f"{before:.1f}/s before, {after:.1f}/s from {APPLIED_WITHIN:g} s after")
    print(f"\n{facts}")
    assert before <= OLD_RATE * 1.2, facts
    assert after >= NEW_RATE_SHARE * NEW_RATE, facts
    row = RateLimitSetting.objects.get(kind="topic", target=topic)
    assert LogEntry.objects.filter(object_id=str(row.pk), action_flag=ADDITION).exists()
    assert Overrides(broker).read()[f"topic:{topic}"] == {"rate": NEW_RATE, "burst": NEW_RATE}
    support.wait_until(lambda: f"[0] {NEW_RATE:.1f}/s" in operator.get(CHANGELIST).content.decode(), timeout=10,
                       what="the change list to show the effective rate the bridge applies")


def test_a_handler_limit_raised_in_the_admin_applies_to_running_workers_within_5_seconds(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, operator: Client
) -> None:
    # Given running workers holding a throttled handler to 5/s, with a backlog
    topic = f"{ns}.throttled"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(throttle={"RATE": OLD_RATE, "BURST": OLD_RATE})
    processes.extend(rig.start(ns, logs, env, topics=[topic]))
    support.produce(topic, ((b"k", b"{}", None) for _ in range(300)), partition=0)
    support.wait_until(lambda: len(recorder.started(ns)) >= 15, timeout=30, what="the backlog flowing at the old rate")

    # When an operator raises the handler's rate to 25/s (burst 25) in the admin
    saved_at = save_limit(operator, "handler", task_name("throttled", ns), rate=NEW_RATE, burst=NEW_RATE)
    support.wait_until(lambda: time.time() > saved_at + APPLIED_WITHIN + 2.0, timeout=15, what="the change to apply")

    # Then from 5 s after the save on, the handler runs at the new rate
    times = sorted(at for at, _ in recorder.started(ns))
    after = rate_between(times, saved_at + APPLIED_WITHIN, saved_at + APPLIED_WITHIN + 2)
    facts = (f"starts per second from 3 s before the save: {per_second(times, saved_at - 3, saved_at + APPLIED_WITHIN + 2)}; "
             f"{after:.1f}/s from {APPLIED_WITHIN:g} s after; {len(recorder.handled_counts(ns))} of 300 handled")
    print(f"\n{facts}")
    assert after >= NEW_RATE_SHARE * NEW_RATE, facts


def test_an_operator_without_the_permission_cannot_change_a_limit(ns: str, database: None, broker) -> None:
    user = User.objects.create_user(f"{ns}-viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_ratelimitsetting"))
    client = Client()
    client.force_login(user)
    try:
        response = client.post(ADD, {"kind": "topic", "target": f"{ns}.timed", "rate": "1000"})
        assert response.status_code == 403
        assert not RateLimitSetting.objects.filter(target=f"{ns}.timed").exists()
        assert f"topic:{ns}.timed" not in Overrides(broker).read()
    finally:
        user.delete()


def test_an_override_the_configured_limit_cannot_take_is_ignored_and_the_running_bridge_goes_on(
    ns: str, kafka_admin: AdminClient, processes: list, logs: Path, operator: Client
) -> None:
    # Given a running bridge whose topic is configured with RATE 5 and MAX_RATE 20 (a lag threshold far
    # above this backlog, so that the lag-adaptive rate stays at the base rate and only the override could move it)
    topic = f"{ns}.timed"
    support.create_topics(kafka_admin, [topic], partitions=1)
    env = rig.limits_env(rate_limits={topic: {"RATE": OLD_RATE, "BURST": OLD_RATE, "MAX_RATE": 20, "LAG_THRESHOLD": 100_000}})
    processes.extend(rig.start(ns, logs, env, topics=[topic], workers=0))
    bridge = next(process for process in processes if process.name == "bridge")
    support.produce(topic, ((b"k", b"{}", None) for _ in range(200)), partition=0)
    support.wait_until(lambda: len(published(ns)) >= 10, timeout=30, what="the backlog flowing")

    # When an operator sets the rate to 25/s and leaves MAX_RATE blank: valid alone (the admin cannot know
    # the configured MAX_RATE), not together with the configuration
    saved_at = save_limit(operator, "topic", topic, rate=NEW_RATE)
    support.wait_until(lambda: time.time() > saved_at + APPLIED_WITHIN, timeout=10, what="the bridge to read it")

    # Then the bridge still runs, at its configured rate, and said once that it ignores the override
    times = published(ns)
    assert bridge.alive(), f"the bridge exited with {bridge.process.returncode}:\n{bridge.tail(15)}"
    assert 0.5 * OLD_RATE <= rate_between(times, saved_at + 2.5, saved_at + APPLIED_WITHIN) <= 1.5 * OLD_RATE, (
        f"published per second: {per_second(times, saved_at - 2, saved_at + APPLIED_WITHIN)}")
    assert bridge.log().count(f"ignoring the run-time override of topic:{topic}") == 1, bridge.tail(15)


def test_the_admin_refuses_a_limit_that_is_invalid_on_its_own(ns: str, operator: Client, broker) -> None:
    page = operator.get(ADD)
    response = operator.post(ADD, {"kind": "topic", "target": f"{ns}.timed", "rate": "25", "burst": "", "max_rate": "10",
                                   "lag_threshold": "", "lag_scale": "", "_save": "Save",
                                   "csrfmiddlewaretoken": page.cookies["csrftoken"].value})
    assert response.status_code == 200 and "must not be below rate" in response.content.decode()
    assert not RateLimitSetting.objects.filter(target=f"{ns}.timed").exists()
    assert f"topic:{ns}.timed" not in Overrides(broker).read()
