from django.apps import AppConfig


class TestHandlersConfig(AppConfig):
    name = "tests.app"
    label = "kbtests"
