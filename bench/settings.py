"""Django settings for benchmark processes: the service's settings plus no-op tasks, on their own Redis DB."""

import os

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")

from dashboard.settings import *  # noqa: E402,F403
from dashboard.settings import INSTALLED_APPS, KAFKABRIDGE  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "bench.app"]
KAFKABRIDGE = {
    **KAFKABRIDGE,
    "GROUP_ID": os.environ.get("KB_BENCH_GROUP", "kafkabridge-bench"),
    "QUEUE": os.environ.get("KB_BENCH_QUEUE", "bench"),
    "HOOKS": ["bench.app.hooks.LatencyHooks"],
}
