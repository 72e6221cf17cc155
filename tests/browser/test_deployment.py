"""The console as docker-compose.yml deploys it: Django's deployment checklist with the compose environment.

Plain HTTP on localhost leaves exactly the four HTTPS items (docs/operators-guide.md, "Deploying the console");
DJANGO_HTTPS=1, for a TLS-terminating proxy, settles them.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import yaml

from tests import support

COMPOSE = support.ROOT / "docker-compose.yml"
HTTPS_ITEMS = {"security.W004", "security.W008", "security.W012", "security.W016"}  # HSTS, redirect, two secure cookies
HSTS_SCOPE_ITEMS = {"security.W005", "security.W021"}  # includeSubDomains and preload: the site's owner decides
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """``service``'s environment in docker-compose.yml, its ``${...}`` filled from ``variables`` as Compose does."""
    environment = yaml.safe_load(COMPOSE.read_text())["services"][service]["environment"]

    def fill(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise AssertionError(f"docker-compose.yml requires {name}: {default}")
        return default or ""

    return {name: VARIABLE.sub(fill, str(value)) for name, value in environment.items()}


def deploy_check(environment: dict[str, str]) -> set[str]:
    """The ids ``manage.py check --deploy`` reports (it passes: warnings only)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=support.ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(support.ROOT), **environment},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return set(re.findall(r"\(([a-z_.]+\.[EW]\d+)\)", result.stdout + result.stderr))


def test_the_compose_environment_leaves_only_the_https_items_of_the_deployment_checklist() -> None:
    environment = compose_environment("web", {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    assert environment["DJANGO_DEBUG"] == "0"

    assert deploy_check(environment) == HTTPS_ITEMS


def test_behind_a_tls_proxy_the_https_items_are_settled() -> None:
    environment = compose_environment("web", {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_HTTPS": "1",
                                              "DJANGO_CSRF_TRUSTED_ORIGINS": "https://console.example.com"})

    assert deploy_check(environment) == HSTS_SCOPE_ITEMS
