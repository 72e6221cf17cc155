"""A small shop whose failures the browser tests browse and fix: each downstream fails until a test heals it.

Topics live under the run's namespace (KBTEST_NS); a test heals a topic by setting ``<ns>:healed:<name>`` in
the recorder's Redis, so a requeued message then succeeds on the real worker.
"""

from __future__ import annotations

from kafkabridge import GiveUp, Message, RetryPolicy, kafka_handler
from tests.app import recorder
from tests.app.recorder import topic


def healed(name: str) -> bool:
    return bool(recorder.client().exists(recorder.key(f"healed:{name}")))


@kafka_handler(topic("payments"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=0.3))
def charge_payment(message: Message) -> None:
    """Three attempts, so the failure page has an attempt history."""
    order = message.json()
    if not healed("payments"):
        raise ConnectionError(f"payment gateway timed out after 30 s (order {order['order']})")
    recorder.record_handled(message)


@kafka_handler(topic("emails"), retry=RetryPolicy(max_attempts=1))
def send_receipt(message: Message) -> None:
    """One failure group of many rows: the messages differ only in their order numbers."""
    order = message.json()
    if not healed("emails"):
        raise ConnectionRefusedError(f"SMTP relay refused the receipt of order {order['order']}")
    recorder.record_handled(message)


@kafka_handler(topic("invoices"), retry=RetryPolicy(max_attempts=3, base_delay=0.1, give_up_on=(ValueError,)))
def issue_invoice(message: Message) -> None:
    """Two exceptions on one topic, for the filter by exception."""
    invoice = message.json()
    if invoice.get("cancelled"):
        raise GiveUp(f"order {invoice['order']} was cancelled upstream")
    raise ValueError(f"invoice of order {invoice['order']} has no lines")


@kafka_handler(topic("shipments"), retry=RetryPolicy(max_attempts=1))
def book_shipment(message: Message) -> None:
    """A value that is not JSON is poison (dead-lettered at once); an operator corrects it and replays."""
    shipment = message.json()
    recorder.record_handled(message, weight=shipment["weight"])
