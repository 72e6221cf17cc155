from django.apps import AppConfig


class FaultHandlersConfig(AppConfig):
    """The fault suite's handlers (tasks.py) and its journaling dead-letter store; enabled by tests.fault.settings."""

    name = "tests.fault.app"
    label = "kbfault"
