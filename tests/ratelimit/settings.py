"""Django settings of the processes the rate-limit tests start: the test settings, the rate-limited
handlers (``tests.ratelimit.app``), and each test's limits from the environment:

``KBTEST_RATE_LIMITS``        JSON for ``KAFKABRIDGE["RATE_LIMITS"]``: ``{"<topic>": {"RATE": 10, "BURST": 5, ...}}``
``KBTEST_THROTTLE``           JSON of the same form: the limit of the throttled handlers (``tests.ratelimit.app.tasks``)
``KBTEST_RATE_LIMIT_REDIS``   ``KAFKABRIDGE["RATE_LIMIT_REDIS_URL"]`` (unset: the Celery broker)

Without them the processes run as with ``tests.settings``, plus hooks that record rate-limit events.
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, KAFKABRIDGE

INSTALLED_APPS = [*INSTALLED_APPS, "tests.ratelimit.app"]
KAFKABRIDGE = {
    **KAFKABRIDGE,
    "HOOKS": [*KAFKABRIDGE["HOOKS"], "tests.ratelimit.app.hooks.RateLimitHooks"],
    "RATE_LIMITS": json.loads(os.environ.get("KBTEST_RATE_LIMITS") or "{}"),
    "RATE_LIMIT_REDIS_URL": os.environ.get("KBTEST_RATE_LIMIT_REDIS") or None,
    # A stopping bridge waits this long for its in-flight messages: the tests stop with a backlog on purpose.
    "SHUTDOWN_TIMEOUT": 1.0,
}
