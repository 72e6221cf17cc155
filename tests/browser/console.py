"""The operator console as deployed, for the browser tests: gunicorn serving the dashboard (DEBUG off, static
files collected and served by WhiteNoise), a real Celery worker and a real bridge.

Every process gets the suite's services (DATABASE_URL, CELERY_BROKER_URL, KBTEST_REDIS_URL, Kafka) and the run's
namespace, which is also the Celery default queue, so requeues and background jobs reach this run's worker only.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support

SETTINGS = "tests.browser.settings"
HEALTH_TIMEOUT = 60.0

# What the shop's producers send: (topic name, values). Each becomes dead letters through the real bridge and worker.
EMAILS = 200
SHOP = {
    "payments": [{"order": 1041 + i} for i in range(3)],
    "emails": [{"order": 2000 + i} for i in range(EMAILS)],
    "invoices": [{"order": 3100 + i} for i in range(4)] + [{"order": 3190 + i, "cancelled": True} for i in range(2)],
    "shipments": ["{'weight': 2.5}", "weight=4"],  # not JSON: poison
}


@dataclass
class Console:
    """The running console: its URL, the run's namespace and its processes (stop them with :meth:`stop`)."""

    ns: str
    url: str
    logs: Path
    processes: list[support.ServiceProcess] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.ns}.{name}"

    def heal(self, name: str) -> None:
        """From now on the handler of topic ``name`` succeeds (tests.browser.app.tasks.healed)."""
        from tests.app import recorder

        recorder.client().set(recorder.key(f"healed:{name}", self.ns), 1)

    def tails(self, lines: int = 40) -> dict[str, str]:
        return {process.log_path.name: process.tail(lines) for process in self.processes}

    def stop(self, timeout: float = 30.0) -> None:
        """All of them at once (each stops gracefully on SIGTERM), then killed if one outlasts ``timeout``."""
        running = [process for process in self.processes if process.alive()]
        for process in running:
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.process.kill()
        for process in self.processes:
            process.stop()


def start(ns: str, logs: Path, kafka_admin: AdminClient) -> Console:
    """The worker, the bridge and the web server, booting side by side while the shop's messages are produced;
    returns once the server answers and every message has its dead letter. The bridge keeps running: the
    overview lists it among the live bridges."""
    env = support.process_env(ns, settings=SETTINGS, extra=_web_environment(ns, logs))
    console = Console(ns=ns, url=f"http://127.0.0.1:{_free_port()}", logs=logs)
    try:
        topics = [console.topic(name) for name in SHOP]
        support.create_topics(kafka_admin, topics, partitions=1)
        worker = support.ServiceProcess("worker", _worker_argv(ns), env, logs / "worker.log")
        console.processes += [worker, support.start_bridge(ns, topics, logs, env=env)]
        _produce_the_shop(console)
        _collect_static(Path(env["DJANGO_STATIC_ROOT"]))
        web = support.ServiceProcess(
            "gunicorn",
            [str(support.BIN / "gunicorn"), "dashboard.wsgi", "--bind", console.url.removeprefix("http://"),
             "--workers", "2", "--graceful-timeout", "5"],
            env, logs / "gunicorn.log",
        )
        console.processes.append(web)
        worker.wait_for_log(r"ready\.", timeout=60)
        _wait_for_dead_letters(topics)
        _wait_healthy(web, f"{console.url}/admin/login/")
    except BaseException:
        console.stop()
        raise
    return console


def _web_environment(ns: str, logs: Path) -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_STATIC_ROOT": str(logs / "static"),
        "CELERY_TASK_DEFAULT_QUEUE": ns,
    }


def _worker_argv(ns: str) -> list[str]:
    """A prefork worker on the run's queue (support.start_worker's, without waiting for it here)."""
    return [str(support.BIN / "celery"), "-A", "dashboard", "worker", "-l", "info", "-P", "prefork", "-c", "2", "-Q", ns,
            "-n", f"{ns}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]


def _produce_the_shop(console: Console) -> None:
    for name, values in SHOP.items():
        support.produce(console.topic(name), [
            (str(i).encode(), value.encode() if isinstance(value, str) else json.dumps(value).encode(), None)
            for i, value in enumerate(values)
        ])


def _wait_for_dead_letters(topics: list[str]) -> None:
    from kafkabridge.contrib.django.models import FailedMessage

    expected = sum(len(values) for values in SHOP.values())
    support.wait_until(
        lambda: FailedMessage.objects.filter(source_topic__in=topics).count() >= expected, timeout=90,
        what=f"{expected} dead letters from the shop's topics", interval=0.3,
    )


def _collect_static(root: Path) -> None:
    """As the image does (Dockerfile), into the server's DJANGO_STATIC_ROOT, where WhiteNoise serves it from
    (run here: this process has Django loaded already, another would have to boot it)."""
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(web: support.ServiceProcess, url: str) -> None:
    def answers() -> bool:
        if not web.alive():
            raise AssertionError(f"gunicorn exited with {web.process.returncode}:\n{web.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except OSError:  # not listening yet, or still importing Django (URLError, timeouts)
            return False

    support.wait_until(answers, timeout=HEALTH_TIMEOUT, what=f"gunicorn to answer {url}", interval=0.2)
