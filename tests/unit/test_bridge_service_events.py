"""The bridge tells the hooks when Kafka or the completion ledger's Redis is lost and when it answers again;
and hands them its status snapshot every STATUS_INTERVAL (a fake consumer, a clock the test moves)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException

from kafkabridge.consumer.bridge import KAFKA_PROBE_INTERVAL, Bridge
from kafkabridge.hooks import HookDispatcher, Hooks
from kafkabridge.observability.bridges import BridgeStatus
from kafkabridge.settings import BridgeSettings

from .fake_kafka import FakeClock, FakeKafka, FakePublisher

P0 = ("orders", 0)


class Seen(Hooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.statuses: list[BridgeStatus] = []
        self.stopped: list[str] = []

    def on_service_error(self, service: str, error: BaseException) -> None:
        self.events.append(("error", service))

    def on_service_restored(self, service: str) -> None:
        self.events.append(("restored", service))

    def on_bridge_status(self, status: BridgeStatus) -> None:
        self.statuses.append(status)

    def on_bridge_stopped(self, instance: str) -> None:
        self.stopped.append(instance)


def start(**options: Any) -> tuple[Bridge, FakeKafka, Seen]:
    kafka, seen = FakeKafka(FakeClock()), Seen()
    settings = BridgeSettings(group_id="g", poll_timeout=0.5, status_interval=5.0, **options)
    bridge = Bridge(settings=settings, topics=["orders"], publisher=FakePublisher(), consumer_factory=kafka.consumer,
                    hooks=HookDispatcher([seen]), clock=kafka.clock, sleep=kafka.clock.sleep)
    bridge.start()
    kafka.last_consumer.rebalance(assign=[P0])
    bridge.run_once()
    return bridge, kafka, seen


def all_brokers_down(bridge: Bridge) -> None:
    bridge.consumer_config()["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))


def test_every_broker_down_is_an_outage_and_the_first_message_consumed_after_it_the_recovery() -> None:
    bridge, kafka, seen = start()
    bridge.consumer_config()["error_cb"](KafkaError(KafkaError._TRANSPORT, "one connection dropped"))
    assert seen.events == [], "one broker's dropped connection is routine"

    all_brokers_down(bridge)
    all_brokers_down(bridge)
    assert seen.events == [("error", "kafka")], "one outage, however often librdkafka says it"

    kafka.produce(P0, b"v")
    bridge.run_once()
    assert seen.events == [("error", "kafka"), ("restored", "kafka")]


def test_an_idle_bridge_notices_kafka_is_back_by_asking_for_metadata_every_few_seconds() -> None:
    bridge, kafka, seen = start()
    answers: list[bool] = [False, True]

    def list_topics(*_: Any, **__: Any) -> object:
        if not answers.pop(0):
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return object()

    kafka.last_consumer.list_topics = list_topics  # type: ignore[attr-defined]
    all_brokers_down(bridge)
    kafka.clock.advance(KAFKA_PROBE_INTERVAL)
    bridge.run_once()
    assert seen.events == [("error", "kafka")] and answers == [True], "asked once, no answer"
    kafka.clock.advance(KAFKA_PROBE_INTERVAL)
    bridge.run_once()
    assert seen.events == [("error", "kafka"), ("restored", "kafka")] and answers == []


def test_status_snapshots_reach_the_hooks_every_interval_and_a_clean_stop_says_stopping_then_stopped() -> None:
    bridge, kafka, seen = start()
    assert [(s.group, [(p.topic, p.partition) for p in s.partitions], s.state) for s in seen.statuses] == [("g", [P0], "running")]
    bridge.run_once()
    assert len(seen.statuses) == 1, "not due yet"
    kafka.clock.advance(5.0)
    bridge.run_once()
    assert len(seen.statuses) == 2

    bridge.stop()
    bridge.run()
    assert seen.statuses[-1].state == "stopping"
    assert seen.stopped == [seen.statuses[0].instance]
