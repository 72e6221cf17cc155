"""Start-up refuses configurations that cannot work, with a message that names the problem."""

from __future__ import annotations

import subprocess
import sys

from tests import support


def test_runbridge_refuses_a_topic_without_a_handler_naming_it(ns: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "runbridge", "--topic", f"{ns}.nobody-handles-this"],
        cwd=support.ROOT, env=support.process_env(ns), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert f"no handler for topic(s) '{ns}.nobody-handles-this'" in result.stderr


def test_a_bridge_on_a_topic_that_does_not_exist_yet_keeps_running_and_says_so(ns: str, logs, bridges: list) -> None:
    bridge = support.start_bridge(ns, [f"{ns}.record"], logs)
    bridges.append(bridge)
    bridge.wait_for_log(r"does not exist \(yet\)", timeout=60)
    assert bridge.alive()


def test_handlers_show_in_celery_inspect_registered(ns: str, worker: support.ServiceProcess) -> None:
    result = subprocess.run(
        [str(support.BIN / "celery"), "-A", "dashboard", "inspect", "registered", "-d", f"{ns}@{__import__('socket').gethostname()}", "-t", "10"],
        cwd=support.ROOT, env=support.process_env(ns), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests.app.tasks.record" in result.stdout and "tests.app.tasks.always_fails" in result.stdout


def test_bridge_and_worker_refuse_retries_that_outlive_the_visibility_timeout(ns: str, logs) -> None:
    env = {**support.process_env(ns), "CELERY_VISIBILITY_TIMEOUT": "120"}  # the test handlers' time limit is 300 s
    bridge = subprocess.run(
        [sys.executable, "manage.py", "runbridge", "--topic", f"{ns}.record"],
        cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert bridge.returncode != 0
    assert "reaches the broker's visibility_timeout of 120s" in bridge.stderr

    worker = subprocess.run(
        [str(support.BIN / "celery"), "-A", "dashboard", "worker", "-P", "solo", "-Q", ns, "--without-gossip", "--without-mingle"],
        cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert worker.returncode != 0
    assert "reaches the broker's visibility_timeout of 120s" in worker.stdout + worker.stderr
