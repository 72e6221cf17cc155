from django.apps import AppConfig


class FailuresConfig(AppConfig):
    """Dead letters in the database and the admin that requeues them; wires kafkabridge into Django."""

    name = "dashboard.failures"
    label = "kafkabridge_failures"
    verbose_name = "Kafka failures"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        import kafkabridge
        from kafkabridge.settings import BridgeSettings

        options = {"DEAD_LETTER_STORE": "dashboard.failures.store.DjangoDeadLetterStore", **getattr(settings, "KAFKABRIDGE", {})}
        kafkabridge.configure(BridgeSettings.from_mapping(options))
