"""Django settings of the kafkabridge service (the demo adds its app in ``dashboard.demo.settings``). Every deployment-specific value comes from the environment.

Environment: DATABASE_URL (default: SQLite next to manage.py), REDIS_URL, CELERY_BROKER_URL (default: REDIS_URL),
KAFKA_BOOTSTRAP_SERVERS, CELERY_VISIBILITY_TIMEOUT (default 3600), and for the web server:
DJANGO_SECRET_KEY, DJANGO_DEBUG ("1" turns debugging on; off by default, on in the demo), DJANGO_ALLOWED_HOSTS and
DJANGO_CSRF_TRUSTED_ORIGINS (comma-separated), DJANGO_STATIC_ROOT (where collectstatic writes), and DJANGO_HTTPS
("1" behind a TLS-terminating proxy: secure cookies, HTTPS redirect, HSTS for DJANGO_HSTS_SECONDS; see
docs/operators-guide.md "Deploying the console").
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# The fallback is for development and tests only; `manage.py check --deploy` reports it (security.W009).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "django-insecure-development-key-set-DJANGO_SECRET_KEY"
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = [host for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if host]
CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]

# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (the four HTTPS items of `check --deploy`).
HTTPS = os.environ.get("DJANGO_HTTPS", "0") == "1"
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "3600"))  # raise it once HTTPS is known to work

INSTALLED_APPS = [
    "kafkabridge.contrib.django",  # first: its admin/index.html (the Overview link) extends Django's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files from the WSGI app, before anything else can touch them
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20  # worker processes write concurrently
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
# WhiteNoise serves STATIC_ROOT (filled by `collectstatic`, with gzip copies); with DEBUG on it finds the apps' files
# itself. No manifest storage: a page must still render where collectstatic has not run (tests, a checkout).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# Seconds before Redis hands an unacknowledged task to another worker; kafkabridge refuses retry
# policies whose longest delay plus time limit reach it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_WORKER_PREFETCH_MULTIPLIER", "1"))  # acks_late: 1 per process
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# kafkabridge options (see kafkabridge.settings.BridgeSettings); KAFKA_BOOTSTRAP_SERVERS overrides.
KAFKABRIDGE = {
    "BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "GROUP_ID": "kafkabridge",
    "CELERY_APP": "dashboard.celery:app",
}
