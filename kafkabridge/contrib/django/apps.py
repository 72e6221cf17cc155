from django.apps import AppConfig


class KafkaBridgeConfig(AppConfig):
    """Dead letters in the database and the admin that requeues them; wires kafkabridge into Django.

    The label stays ``kafkabridge_failures`` (table ``kafkabridge_failures_failedmessage``) so that
    databases created before the app moved under ``kafkabridge.contrib.django`` migrate unchanged.
    """

    name = "kafkabridge.contrib.django"
    label = "kafkabridge_failures"
    verbose_name = "Kafka failures"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        import kafkabridge
        from kafkabridge.settings import BridgeSettings

        options = {"DEAD_LETTER_STORE": DEFAULT_STORE, **getattr(settings, "KAFKABRIDGE", {})}
        kafkabridge.configure(BridgeSettings.from_mapping(options))


DEFAULT_STORE = "kafkabridge.contrib.django.store.DjangoDeadLetterStore"
