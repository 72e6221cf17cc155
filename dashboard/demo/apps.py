from django.apps import AppConfig


class DemoConfig(AppConfig):
    """A sample handler and a sample producer, so the first run shows successes, retries and dead letters."""

    name = "dashboard.demo"
    label = "kafkabridge_demo"
