"""The database (the dead-letter store) is down while messages are being dead-lettered: none is lost.

Scenario 9.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig

pytestmark = pytest.mark.outage  # stops PostgreSQL: on a service set of its own (scripts/test's group "outage")

N = 200
RATE = 100.0
FAILED_SAVES = 5
"""Dead letters the worker failed to store before the database comes back."""


def test_dead_letters_while_the_database_is_down_are_stored_once_it_is_back(rig: Rig, report) -> None:
    # Given a stream under way in which every eighth message or so runs out of retries
    topic = rig.topic("fault")
    worker = rig.start_worker()
    rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(N // 10)

    # When PostgreSQL is down while several of them are dead-lettered
    run.mark_fault()
    connection.close()
    with support.outage("postgres"):
        support.wait_until(lambda: worker.log().count("could not store the dead letter") >= FAILED_SAVES, timeout=60,
                           what=f"{FAILED_SAVES} dead letters to wait for the database")
    run.mark_restored()

    # Then every one is stored once the database is back, without running its handler again
    figures = rig.settle(run, timeout=180)
    report(9, "Dead letters while the database is down are stored once it is back", "PostgreSQL stopped, started", figures)
    figures.assert_sound(duplicates=0)
    assert figures.dead_lettered == sum(plan.dead_lettered(m) for m in run.producing.acked)
