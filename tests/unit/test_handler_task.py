import subprocess
import sys

from celery import Task

from kafkabridge import HandlerTask
from tests.app.tasks import FLAKY_POLICY, fails_twice_then_succeeds, record
from tests.support import ROOT


def test_a_kafka_handler_is_a_real_celery_task_that_acknowledges_late() -> None:
    assert isinstance(record, Task) and isinstance(record, HandlerTask)
    assert callable(record.delay) and callable(record.apply_async)
    assert record.name == "tests.app.tasks.record"
    assert record.acks_late is True and record.reject_on_worker_lost is True
    assert fails_twice_then_succeeds.kafka_retry_policy == FLAKY_POLICY


def test_the_library_does_not_import_django() -> None:
    code = "import sys, kafkabridge, kafkabridge.bridge, kafkabridge.handler; assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
