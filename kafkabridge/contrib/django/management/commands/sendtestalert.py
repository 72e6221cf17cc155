"""``python manage.py sendtestalert``: send a sample alert to the configured webhook and say what went wrong if it cannot."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kafkabridge import KafkaBridgeError, runtime
from kafkabridge.alerts import AlertSettings, NotifierError, RateLimited, WebhookGone
from kafkabridge.alerts.sample import send_test_alert


class Command(BaseCommand):
    help = "Send a sample alert to the alerts webhook (KAFKABRIDGE['ALERTS'], KAFKABRIDGE_ALERTS_WEBHOOK_URL) to check the wiring."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = AlertSettings.from_mapping(runtime.current().settings.alerts)
            message_id = send_test_alert(settings)
        except KafkaBridgeError as error:
            raise CommandError(str(error)) from None
        except RateLimited as error:
            raise CommandError(f"the webhook is rate-limiting this address: try again in {error.retry_after:.0f}s") from None
        except WebhookGone as error:
            raise CommandError(f"{error}; copy the webhook URL again from the channel's Integrations settings") from None
        except NotifierError as error:
            raise CommandError(f"could not send the test alert: {error}") from None
        where = f" (message id {message_id})" if message_id else ""
        self.stdout.write(self.style.SUCCESS(f"Sent a test alert with the {settings.notifier} notifier{where}."))
