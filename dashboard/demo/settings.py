"""Settings of the demo (``scripts/demo``): the service's settings plus the demo's handler and producer.

The demo app is kept out of ``dashboard.settings`` so that a deployment, or a project that extends those
settings, never registers the demo's handler (whose retry policy would count in every worker's checks).
"""

import os

from dashboard.settings import *  # noqa: F403
from dashboard.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "dashboard.demo"]
# The demo runs on a developer's machine (runserver serves the static files): debugging on unless DJANGO_DEBUG says
# otherwise, as docker-compose.yml does (DJANGO_DEBUG=0: the demo's handler behind the deployed web server).
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
