"""Settings of the demo (``scripts/demo``): the service's settings plus the demo's handler and producer.

The demo app is kept out of ``dashboard.settings`` so that a deployment, or a project that extends those
settings, never registers the demo's handler (whose retry policy would count in every worker's checks).
"""

from dashboard.settings import *  # noqa: F403
from dashboard.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "dashboard.demo"]
