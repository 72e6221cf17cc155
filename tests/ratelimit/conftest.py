"""Fixtures of the rate-limit tests: processes stopped whatever happens, and the Redis state each test leaves removed."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Iterator

import pytest
import redis

from tests import support
from tests.ratelimit import rig


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/ratelimit/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            # They stop no shared service (test_redis_down stops a Redis of its own), but scripts/test runs them
            # in its group "outage", on the second service set, for balance: ~3 of the ~13 minutes of the other group.
            item.add_marker(pytest.mark.outage)


@pytest.fixture
def broker(services: None) -> redis.Redis:
    """The Celery broker's Redis: where the limiter keeps its buckets unless RATE_LIMIT_REDIS_URL says otherwise."""
    return redis.Redis.from_url(support.BROKER_URL)


@pytest.fixture
def processes(ns: str, broker: redis.Redis) -> Iterator[list[support.ServiceProcess]]:
    """Workers and bridges the test started: stopped at the end, then the test's buckets,
    overrides, effective rates, queue and ledger are removed from Redis."""
    started: list[support.ServiceProcess] = []
    yield started
    for process in started:  # killed: tests leave backlogs behind on purpose, and a graceful stop takes seconds
        if process.alive():  # (the pool's children exit with their parent; the group and queue are the test's)
            process.signal(signal.SIGKILL)
    for process in started:
        process.stop()
    rig.forget_state(broker, ns)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path
