"""``python manage.py runbridge``: run the Kafka → Celery bridge until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafkabridge import KafkaBridgeError, build_bridge
from kafkabridge import runtime


class Command(BaseCommand):
    help = "Consume Kafka topics and hand every message to its @kafka_handler Celery task (at least once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--topic", action="append", default=[], help="Topic to consume (repeatable; default: every topic with a handler).")
        parser.add_argument("--group-id", help="Kafka consumer group (default: KAFKABRIDGE['GROUP_ID']).")

    def handle(self, *args: Any, topic: list[str], group_id: str | None, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        wiring = runtime.current()
        try:
            bridge = build_bridge(runtime.celery_app(), wiring.settings, topics=topic, group_id=group_id, hooks=wiring.hooks)
        except KafkaBridgeError as error:
            raise CommandError(str(error)) from error
        if wiring.settings.metrics_port is not None:
            from kafkabridge.observability.metrics import serve_metrics

            try:
                serve_metrics(wiring.settings.metrics_port, wiring.settings.metrics_address)
            except OSError as error:
                raise CommandError(f"cannot serve /metrics on port {wiring.settings.metrics_port}: {error} (METRICS_PORT)") from error
        bridge.stop_on_signals()
        bridge.run()
