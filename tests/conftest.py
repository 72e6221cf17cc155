"""Fixtures of the whole suite. Integration tests need the real services: `scripts/services up`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Iterator
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
import redis
from confluent_kafka.admin import AdminClient

from tests import support
from tests.app import recorder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services() -> None:
    """Fails loudly, naming the command that starts them, when a service is not there."""
    problems = []
    try:
        recorder.client().ping()
        redis.Redis.from_url(support.BROKER_URL).ping()
    except redis.RedisError as error:
        problems.append(f"Redis: {error}")
    try:
        psycopg.connect(maintenance_database(), connect_timeout=5).close()
    except psycopg.Error as error:
        problems.append(f"PostgreSQL: {error}")
    try:
        AdminClient({"bootstrap.servers": support.KAFKA}).list_topics(timeout=10)
    except Exception as error:
        problems.append(f"Kafka: {error}")
    if problems:
        pytest.fail("integration services are not running (start them with `scripts/services up`): " + "; ".join(problems))


def maintenance_database() -> str:
    """The server of DATABASE_URL, database "postgres": where the test database is created."""
    return make_conninfo(support.DATABASE_URL, dbname="postgres")


@pytest.fixture(scope="session")
def django_db_setup(services: None, django_db_blocker: object) -> None:
    """Use the test database as it is (no per-test transaction): worker processes write to it too."""
    from django.conf import settings
    from django.core.management import call_command

    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(maintenance_database(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        call_command("migrate", verbosity=0)


@pytest.fixture
def database(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Database access in autocommit mode, so worker processes see what the test writes and vice versa."""
    from django.db import connection

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        yield
        connection.close()


@pytest.fixture
def ns() -> Iterator[str]:
    """A namespace of this test alone: topic names, consumer group, Celery queue and Redis keys."""
    name = f"kbt{uuid4().hex[:10]}"
    yield name
    client = recorder.client()
    keys = list(client.scan_iter(f"{name}:*", count=1000))  # 10 keys a round trip by default: seconds per test on a full db
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def kafka_admin(services: None) -> AdminClient:
    return AdminClient({"bootstrap.servers": support.KAFKA})


@pytest.fixture
def requeues_to_this_test(ns: str) -> Iterator[None]:
    """Requeues from this process (the admin, services.requeue) go onto the queue of this test's worker."""
    import kafkabridge
    from kafkabridge import runtime

    before = runtime.current()
    kafkabridge.configure(replace(before.settings, queue=ns), hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
    yield
    kafkabridge.configure(before.settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def worker(ns: str, logs: Path, django_db_setup: None) -> Iterator[support.ServiceProcess]:
    process = support.start_worker(ns, logs)
    yield process
    process.stop()


@pytest.fixture
def bridges(ns: str, logs: Path) -> Iterator[list[support.ServiceProcess]]:
    """Bridge processes the test started; stopped at the end whatever happened."""
    started: list[support.ServiceProcess] = []
    yield started
    for bridge in started:
        bridge.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, show the tail of every worker and bridge log the test wrote."""
    report = yield
    if report.failed and call.when == "call" and "logs" in getattr(item, "funcargs", {}):
        for path in sorted(Path(item.funcargs["logs"]).glob("*.log")):
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-60:])
            report.sections.append((f"log {path.name}", tail))
    return report
