"""The wheel a user installs: the library and its Django app, and nothing of this repository's service.

Builds the wheel, installs it into a fresh virtualenv (with the pinned requirements.txt, so pip's
cache serves them), starts a new Django project with ``django-admin startproject``, adds the app, and
runs ``migrate`` and ``runbridge --help`` there, outside this repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT

APP = "kafkabridge.contrib.django"


def run(argv: list[str | Path], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(cwd)), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, ROOT], cwd=out)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("kafkabridge-*.whl")
    return path


@pytest.fixture(scope="module")
def project(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a fresh virtualenv with the wheel installed, a new Django project using the app)."""
    home = tmp_path_factory.mktemp("user")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    installed = run([python, "-m", "pip", "install", "-q", "-r", ROOT / "requirements.txt", f"{wheel}[django]"], cwd=home)
    assert installed.returncode == 0, installed.stderr
    (home / "mysite").mkdir()
    started = run([home / "venv" / "bin" / "django-admin", "startproject", "mysite", home / "mysite"], cwd=home)
    assert started.returncode == 0, started.stderr
    settings = home / "mysite" / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + f'\nINSTALLED_APPS += ["{APP}"]\nKAFKABRIDGE = {{"CELERY_APP": "mysite.celery:app"}}\n')
    return python, home / "mysite"


def test_the_wheel_holds_the_library_and_its_django_app_but_not_the_service_project(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.startswith(("dashboard/", "tests/", "bench/"))]
    assert "kafkabridge/__init__.py" in names
    assert "kafkabridge/contrib/django/migrations/0001_initial.py" in names
    assert "kafkabridge/contrib/django/management/commands/runbridge.py" in names
    assert "kafkabridge/contrib/django/templates/kafkabridge_failures/groups.html" in names  # the console's pages


def test_a_new_django_project_migrates_and_runs_runbridge_help_with_the_installed_app(project: tuple[Path, Path]) -> None:
    python, site = project
    migrated = run([python, "manage.py", "migrate", "-v", "1"], cwd=site)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "kafkabridge_failures.0001_initial... OK" in migrated.stdout

    helped = run([python, "manage.py", "runbridge", "--help"], cwd=site)
    assert helped.returncode == 0, helped.stderr
    assert "--topic" in helped.stdout and "--group-id" in helped.stdout


def test_installing_kafkabridge_does_not_install_a_package_called_dashboard(project: tuple[Path, Path]) -> None:
    python, site = project
    found = run([python, "-c", "import dashboard"], cwd=site)
    assert found.returncode != 0
    assert "No module named 'dashboard'" in found.stderr
    library = run([python, "-c", "import kafkabridge, kafkabridge.contrib.django; print(kafkabridge.__file__)"], cwd=site)
    assert library.returncode == 0 and "site-packages" in library.stdout, library.stderr
