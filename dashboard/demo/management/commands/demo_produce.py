"""``python manage.py demo_produce``: send sample orders and wait until the demo's dead letters appear."""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.demo.tasks import DEMO_TOPIC
from dashboard.failures.models import FailedMessage
from kafkabridge import runtime


def sample_orders(count: int) -> list[tuple[bytes, bytes, str]]:
    """(key, value, expected outcome) for ``count`` orders: most succeed, some fail twice, some are poison."""
    orders = []
    for number in range(count):
        order: dict[str, Any] = {"id": number, "customer": f"customer-{number % 7}", "quantity": 1}
        outcome = "handled"
        if number % 10 == 3:
            order["fail_times"], outcome = 2, "handled after 2 retries"
        elif number % 25 == 7:
            order["quantity"], outcome = 0, "dead letter (GiveUp)"
        elif number % 25 == 17:
            del order["customer"]
            outcome = "dead letter (KeyError, give_up_on)"
        value = json.dumps(order).encode()
        if number % 25 == 12:
            value, outcome = b"\xff\xfe not json {", "dead letter (poison: not UTF-8 / JSON)"
        orders.append((f"order-{number}".encode(), value, outcome))
    return orders


class Command(BaseCommand):
    help = "Produce sample orders to the demo topic and report how they ended."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=50)
        parser.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait for the dead letters.")

    def handle(self, *args: Any, count: int, timeout: float, **options: Any) -> None:
        servers = runtime.current().settings.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": servers})
        if DEMO_TOPIC not in admin.list_topics(timeout=10).topics:
            for future in admin.create_topics([NewTopic(DEMO_TOPIC, num_partitions=3, replication_factor=1)]).values():
                future.result()
        orders = sample_orders(count)
        producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True})
        for key, value, _ in orders:
            producer.produce(DEMO_TOPIC, key=key, value=value, headers=[("source", b"demo"), ("trace-bytes", b"\x00\x01")])
        if producer.flush(30):
            raise CommandError("some demo messages were not delivered to Kafka")
        expected = sum(1 for *_, outcome in orders if outcome.startswith("dead letter"))
        self.stdout.write(f"produced {len(orders)} orders to {DEMO_TOPIC}: {len(orders) - expected} should be handled "
                          f"(some after 2 retries), {expected} should end as dead letters")
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = FailedMessage.objects.filter(source_topic=DEMO_TOPIC).count()
            if seen >= expected:
                break
            time.sleep(0.5)
        self.stdout.write(f"dead letters stored for {DEMO_TOPIC}: {seen} (expected {expected})")
        if seen < expected:
            raise CommandError("the dead letters did not all arrive in time: is the worker running? (see its log)")
