import ast

import pytest
from celery import Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from kafkabridge import HandlerTask
from kafkabridge.worker.handler import keeping_the_message, soft_limit
from tests.app.tasks import FLAKY_POLICY, fails_twice_then_succeeds, record
from tests.support import ROOT


def test_a_kafka_handler_is_a_real_celery_task_that_acknowledges_late() -> None:
    assert isinstance(record, Task) and isinstance(record, HandlerTask)
    assert callable(record.delay) and callable(record.apply_async)
    assert record.name == "tests.app.tasks.record"
    assert record.acks_late is True and record.reject_on_worker_lost is True
    assert fails_twice_then_succeeds.kafka_retry_policy == FLAKY_POLICY


def test_the_core_of_the_library_does_not_import_django() -> None:
    # Checked in the source: kombu itself imports django.utils when Django happens to be installed.
    # Only the Django integration (kafkabridge/contrib/django) may import it.
    offenders = []
    contrib = ROOT / "kafkabridge" / "contrib"
    for path in (ROOT / "kafkabridge").rglob("*.py"):
        if contrib in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "django"]
    assert offenders == []


def test_a_retry_that_cannot_be_scheduled_rejects_the_task_with_requeue_instead_of_dropping_it() -> None:
    for raised in (SoftTimeLimitExceeded(), Reject(ConnectionError("broker down"), requeue=False)):
        with pytest.raises(Reject) as rejected, keeping_the_message("orders/0@1"):
            raise raised
        assert rejected.value.requeue is True
    with pytest.raises(Retry), keeping_the_message("orders/0@1"):  # a scheduled retry goes through untouched
        raise Retry()


@pytest.mark.parametrize(("time_limit", "soft"), [(300.0, 270.0), (10.0, 9.0), (5.0, 4.0), (2.0, 1.0), (1.0, 0.5)])
def test_the_soft_limit_leaves_the_failure_path_a_tenth_of_the_limit_and_at_least_a_second(time_limit: float, soft: float) -> None:
    assert soft_limit(time_limit) == pytest.approx(soft)
