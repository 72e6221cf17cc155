"""The demo's handler: orders that succeed, orders that fail twice before they succeed, and poison."""

from __future__ import annotations

import logging

from kafkabridge import GiveUp, Message, RetryPolicy, kafka_handler

logger = logging.getLogger(__name__)

DEMO_TOPIC = "demo.orders"


class PaymentServiceDown(ConnectionError):
    """Stands for a flaky dependency: worth retrying."""


@kafka_handler(
    DEMO_TOPIC,
    retry=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=5.0, jitter=0.2, give_up_on=(KeyError,)),
)
def handle_order(message: Message) -> None:
    order = message.json()  # invalid JSON is poison: dead-lettered at once, raw bytes kept
    if message.attempt <= order.get("fail_times", 0):
        raise PaymentServiceDown(f"payment service timed out for order {order.get('id')} (attempt {message.attempt})")
    if order.get("quantity", 1) <= 0:
        raise GiveUp(f"order {order.get('id')} has quantity {order['quantity']}")
    customer = order["customer"]  # a missing customer is a KeyError: give_up_on, dead-lettered at once
    logger.info("order %s for %s handled on attempt %d", order.get("id"), customer, message.attempt)
