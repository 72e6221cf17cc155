"""PrometheusHooks: each hook event moves the metric it names, with bounded labels only."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from kafkabridge import DeadLetterRecord, Message, MessageId
from kafkabridge.observability.metrics import Metrics, PrometheusHooks


def hooks_and_registry() -> tuple[PrometheusHooks, CollectorRegistry]:
    registry = CollectorRegistry()
    return PrometheusHooks(Metrics(registry)), registry


def test_worker_events_count_per_topic_and_handler() -> None:
    hooks, registry = hooks_and_registry()
    message = Message("orders", 2, 41, key=b"customer-7", value=b"{}")
    hooks.on_handler_started(message, "shop.handle")
    hooks.on_retry_scheduled(message, "shop.handle", RuntimeError("down"), 0.5)
    hooks.on_handler_started(message, "shop.handle")
    hooks.on_handler_succeeded(message, "shop.handle", 0.25)
    now = datetime.now(timezone.utc)
    hooks.on_dead_lettered(DeadLetterRecord.from_error(
        message, handler="shop.handle", reason="crashed the worker 3 times", error=None, first_failed_at=now, last_failed_at=now,
    ))
    hooks.on_requeued(MessageId("orders", 2, 41), "shop.handle", "orders/2@41:requeue:abc")
    hooks.on_rate_limited(message, "shop.handle", 1.5)

    labels = {"topic": "orders", "handler": "shop.handle"}
    sample = registry.get_sample_value
    assert sample("kafkabridge_handler_runs_total", labels) == 2
    assert sample("kafkabridge_retries_total", labels) == 1
    assert sample("kafkabridge_handler_failures_total", labels) == 1  # the crash dead letter carried no error
    assert sample("kafkabridge_handled_total", labels) == 1
    assert sample("kafkabridge_handler_duration_seconds_sum", labels) == 0.25
    assert sample("kafkabridge_dead_lettered_total", labels) == 1
    assert sample("kafkabridge_requeued_total", labels) == 1
    assert sample("kafkabridge_rate_limited_total", labels) == 1 and sample("kafkabridge_rate_limit_wait_seconds_sum", labels) == 1.5
    exposed = {k for metric in registry.collect() for s in metric.samples for k in s.labels}
    assert exposed <= {"topic", "handler", "partition", "kind", "le"}  # never a key or an offset


def test_bridge_and_producer_events_set_lag_offsets_and_latency() -> None:
    hooks, registry = hooks_and_registry()
    hooks.on_batch_published([Message("orders", 0, 1), Message("orders", 1, 5), Message("refunds", 0, 9)])
    hooks.on_partition_lag({("orders", 0): 12, ("orders", 1): 0})
    hooks.on_partition_lag({("orders", 0): 3})
    hooks.on_offsets_committed({("orders", 0): 2})
    hooks.on_produced("orders", 0, 0.02)
    hooks.on_produce_failed("orders", RuntimeError("timed out"))

    sample = registry.get_sample_value
    assert sample("kafkabridge_messages_published_total", {"topic": "orders"}) == 2
    assert sample("kafkabridge_messages_published_total", {"topic": "refunds"}) == 1
    assert sample("kafkabridge_consumer_lag", {"topic": "orders", "partition": "0"}) == 3
    assert sample("kafkabridge_consumer_lag", {"topic": "orders", "partition": "1"}) == 0
    assert sample("kafkabridge_committed_offset", {"topic": "orders", "partition": "0"}) == 2
    assert sample("kafkabridge_produce_latency_seconds_count", {"topic": "orders"}) == 1
    assert sample("kafkabridge_produce_latency_seconds_bucket", {"topic": "orders", "le": "0.025"}) == 1
    assert sample("kafkabridge_produced_total", {"topic": "orders"}) == 1
    assert sample("kafkabridge_produce_failed_total", {"topic": "orders"}) == 1


def test_hooks_made_twice_in_one_process_share_the_default_metrics() -> None:
    assert PrometheusHooks().metrics is PrometheusHooks().metrics
