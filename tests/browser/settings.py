"""Settings of the browser tests' server, worker and bridge: the suite's settings plus the shop's handlers."""

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.browser.app"]
DATABASES["default"]["CONN_MAX_AGE"] = 60  # as deployed (dashboard.settings): the worker keeps its connection between tasks
