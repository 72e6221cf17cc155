"""``python manage.py demo_produce``: send sample orders and wait until the demo's dead letters appear."""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.demo.tasks import DEMO_TOPIC
from kafkabridge.contrib.django.models import FailedMessage
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
        expected_dead: set[tuple[int, int]] = set()
        failures: list[object] = []

        def delivered(error: object, record: Any, outcome: str) -> None:
            if error is not None:
                failures.append(error)
            elif outcome.startswith("dead letter"):
                expected_dead.add((record.partition(), record.offset()))

        for key, value, outcome in orders:
            producer.produce(
                DEMO_TOPIC, key=key, value=value, headers=[("source", b"demo"), ("trace-bytes", b"\x00\xff")],
                on_delivery=lambda error, record, outcome=outcome: delivered(error, record, outcome),
            )
        if producer.flush(30) or failures:
            raise CommandError(f"some demo messages were not delivered to Kafka: {failures[:3]}")
        self.stdout.write(f"produced {len(orders)} orders to {DEMO_TOPIC}: {len(orders) - len(expected_dead)} should be "
                          f"handled (every tenth after 2 retries), {len(expected_dead)} should end as dead letters")
        deadline = time.monotonic() + timeout
        stored: set[tuple[int, int]] = set()
        while time.monotonic() < deadline and stored != expected_dead:
            time.sleep(0.5)
            stored = {
                (row.source_partition, row.source_offset)
                for row in FailedMessage.objects.filter(source_topic=DEMO_TOPIC)
                if (row.source_partition, row.source_offset) in expected_dead
            }
        self.stdout.write(f"dead letters stored: {len(stored)} of {len(expected_dead)} expected")
        if stored != expected_dead:
            raise CommandError("the dead letters did not all arrive in time: are the worker and the bridge running? (see their logs)")
