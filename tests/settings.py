"""Django settings for the test suite: the service's settings, on the test services, plus the test handlers.

Integration tests run real worker and bridge processes with these settings; each test gives them its
own namespace (KBTEST_NS) for topic names, the Celery queue and Redis keys.

Every address comes from the environment (defaults: the services of ``scripts/services up``), so the
suite can run against a second instance: DATABASE_URL, CELERY_BROKER_URL, KBTEST_REDIS_URL (what the
test handlers record) and KAFKA_BOOTSTRAP_SERVERS (read by the bridge's settings and tests/support.py).
The defaults are put into the environment, so the worker and bridge processes see the same ones.
"""

import os
from pathlib import Path

import dj_database_url

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kafkabridge_test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")

from dashboard.settings import *  # noqa: E402,F403
from dashboard.settings import INSTALLED_APPS, KAFKABRIDGE  # noqa: E402

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.app"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users

KBTEST_REDIS_URL = os.environ["KBTEST_REDIS_URL"]
KAFKABRIDGE = {
    **KAFKABRIDGE,
    "QUEUE": os.environ.get("KBTEST_NS") or None,
    "HOOKS": ["tests.app.hooks.RecordingHooks"],
    "POLL_TIMEOUT": 0.2,
    # A killed bridge's partitions move to its successor after this long (the broker's minimum).
    "CONSUMER_CONFIG": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    # The JSON Schema of the test handler tests.app.tasks.handles_valid_orders (a file, as a project would keep it).
    "SCHEMAS": {f"{os.environ.get('KBTEST_NS', 'kbtest')}.validated": str(Path(__file__).parent / "app" / "schemas" / "order.json")},
}

# Metrics tests start bridges and workers with KAFKABRIDGE_METRICS_PORT (read by BridgeSettings): they then
# record and serve Prometheus metrics. KBTEST_MAX_IN_FLIGHT holds a partition at that many messages in flight.
if os.environ.get("KAFKABRIDGE_METRICS_PORT"):
    KAFKABRIDGE["HOOKS"] = [*KAFKABRIDGE["HOOKS"], "kafkabridge.observability.metrics.PrometheusHooks"]
if os.environ.get("KBTEST_MAX_IN_FLIGHT"):
    KAFKABRIDGE["MAX_IN_FLIGHT"] = int(os.environ["KBTEST_MAX_IN_FLIGHT"])
if os.environ.get("KBTEST_PRODUCER_LINGER_MS"):  # Producer tests: records wait this long in librdkafka unless flushed
    KAFKABRIDGE["PRODUCER_CONFIG"] = {"linger.ms": int(os.environ["KBTEST_PRODUCER_LINGER_MS"])}
# Alert tests start bridges and workers with KAFKABRIDGE_ALERTS_WEBHOOK_URL (read by AlertSettings): they then group
# alerts in the test's namespace of KBTEST_REDIS_URL and send them to the test's fake Discord.
if os.environ.get("KAFKABRIDGE_ALERTS_WEBHOOK_URL"):
    KAFKABRIDGE["HOOKS"] = [*KAFKABRIDGE["HOOKS"], "kafkabridge.alerts.AlertHooks"]
    KAFKABRIDGE["ALERTS"] = {
        "BASE_URL": "http://testserver", "REDIS_URL": KBTEST_REDIS_URL, "PREFIX": f"{os.environ.get('KBTEST_NS', 'kbtest')}:alerts",
        "WINDOW": float(os.environ.get("KBTEST_ALERTS_WINDOW", "5")), "UPDATE_INTERVAL": float(os.environ.get("KBTEST_ALERTS_UPDATE_INTERVAL", "5")),
    }
