from django.apps import AppConfig


class RateLimitHandlersConfig(AppConfig):
    """The rate-limit tests' handlers (tasks.py) and hooks; enabled by tests.ratelimit.settings."""

    name = "tests.ratelimit.app"
    label = "kbratelimit"
