from django.apps import AppConfig


class TestHandlersConfig(AppConfig):
    name = "tests.app"
    label = "kbtests"

    def ready(self) -> None:
        from .tracing import export_from_environment

        export_from_environment()  # KBTEST_TRACE_DIR: this process exports its spans there (tracing tests)
