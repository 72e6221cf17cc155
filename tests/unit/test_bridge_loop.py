"""The consumer loop driven turn by turn with a fake consumer and publisher, on a clock the test moves."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pytest

from kafkabridge.consumer.bridge import Bridge
from kafkabridge.consumer.flow_control import Cause, Counts
from kafkabridge.settings import BridgeSettings

from .fake_kafka import FakeClock, FakeConsumer, FakeKafka, FakePublisher

P0, P1, P2 = ("orders", 0), ("orders", 1), ("orders", 2)
LONGEST_OUTAGE_DELAY = 10.0  # kafkabridge.backoff.broker_outage_delay never waits longer


class HeldByTest(Cause):
    """A second cause for the tests: holds the partitions it is given until released."""

    name = "test hold"

    def __init__(self, *partitions: tuple[str, int]) -> None:
        self.partitions = set(partitions)

    def admit(self, offered: Counts, now: float) -> Counts:
        return {partition: 0 for partition in offered if partition in self.partitions}

    def holds(self, pending: Counts, now: float) -> Mapping[tuple[str, int], float | None]:
        return {partition: None for partition in pending if partition in self.partitions}

    def release(self) -> None:
        self.partitions.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kafka(clock: FakeClock) -> FakeKafka:
    return FakeKafka(clock)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


def start_bridge(kafka: FakeKafka, publisher: FakePublisher, *causes: Cause, **options: Any) -> tuple[Bridge, FakeConsumer]:
    settings = BridgeSettings(**{
        "group_id": "g", "batch_size": 5, "poll_timeout": 0.5, "commit_interval": 1.0, "shutdown_timeout": 30.0,
        "consumer_config": {"session.timeout.ms": 6000}, **options,
    })
    bridge = Bridge(settings=settings, topics=["orders"], publisher=publisher, consumer_factory=kafka.consumer,
                    causes=causes, clock=kafka.clock, sleep=kafka.clock.sleep)
    bridge.start()
    return bridge, kafka.last_consumer


def turns(bridge: Bridge, count: int) -> None:
    for _ in range(count):
        bridge.run_once()


def values(count: int, start: int = 0) -> list[bytes]:
    return [f"v{i}".encode() for i in range(start, start + count)]


def refused_publishes(caplog: pytest.LogCaptureFixture) -> int:
    return sum("Celery broker refused a publish" in r.getMessage() and "partitions paused" in r.getMessage() for r in caplog.records)


# -- flow control ---------------------------------------------------------------------------------


@pytest.mark.parametrize("first_to_clear", ["broker outage", "test hold"])
def test_a_partition_held_by_two_causes_resumes_only_after_both_clear(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, first_to_clear: str
) -> None:
    # Given P0 held by the test cause and, once a publish of P1 is refused, by the broker outage too
    hold = HeldByTest(P0)
    bridge, consumer = start_bridge(kafka, publisher, hold)
    kafka.produce(P0, *values(3))
    kafka.produce(P1, *values(3))
    consumer.rebalance(assign=[P0, P1])
    publisher.refuse()
    bridge.run_once()
    assert consumer.paused == {P0, P1}

    # When the first cause clears, P0 stays paused (P1 too, if the outage is still on)
    if first_to_clear == "broker outage":
        publisher.accept()
        clock.advance(LONGEST_OUTAGE_DELAY)
        bridge.run_once()
        assert consumer.paused == {P0}
    else:
        hold.release()
        bridge.run_once()
        assert consumer.paused == {P0, P1}
    assert publisher.offsets(P0) == []

    # Then it resumes only when the second one clears too, and its messages go
    hold.release()
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 3)
    assert consumer.paused == set()
    assert publisher.offsets(P0) == [0, 1, 2] and publisher.offsets(P1) == [0, 1, 2]


def test_a_paused_partitions_prefetched_messages_are_published_exactly_once_in_order(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock
) -> None:
    # Given a partition with more messages than one batch, prefetched by the consumer
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(40))
    consumer.rebalance(assign=[P0])

    # When the broker refuses the first batch: the partition is paused and its prefetch thrown away
    publisher.refuse()
    turns(bridge, 5)
    assert consumer.paused == {P0}
    assert consumer.discarded[P0] > 0, "the scenario needs prefetched messages that librdkafka discarded"
    assert consumer.returned_offsets(P0) == [0, 1, 2, 3, 4]

    # Then once the broker is back, every message is published once, in offset order, and committed
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 12)
    assert publisher.offsets(P0) == list(range(40))
    assert kafka.committed[P0] == 40


def test_the_bridge_keeps_consuming_and_probes_with_backoff_without_resuming_between_probes(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(3))
    kafka.produce(P1, *values(3))
    consumer.rebalance(assign=[P0, P1])
    publisher.refuse()
    started, calls_before = clock(), consumer.consume_calls

    while clock() - started < 30:
        bridge.run_once()

    assert consumer.consume_calls - calls_before >= 30 / 0.5, "consume() goes on at least every poll_timeout"
    assert 4 <= publisher.calls <= 12, f"probes back off (0.2 s doubling to 10 s): {publisher.calls} in 30 s"
    assert refused_publishes(caplog) == publisher.calls
    assert consumer.pause_calls == [{P0, P1}] and consumer.resume_calls == [], "paused once, never resumed between probes"
    assert kafka.committed == {}


def test_the_broker_outage_clears_on_a_successful_publish_and_resumes_every_partition_it_held(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    for partition in (P0, P1, P2):
        kafka.produce(partition, *values(2))
    consumer.rebalance(assign=[P0, P1, P2])
    publisher.refuse(times=2)
    turns(bridge, 1)
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 1)
    assert consumer.paused == {P0, P1, P2}

    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 1)

    assert consumer.paused == set() and consumer.resume_calls == [{P0, P1, P2}]
    assert any("Celery broker accepts publishes again after 2 failure(s); resuming" in r.getMessage() for r in caplog.records)
    turns(bridge, 1)  # the sixth message was not fetched before the pause
    assert sorted(publisher.offsets(P0) + publisher.offsets(P1) + publisher.offsets(P2)) == [0, 0, 0, 1, 1, 1]


# -- rebalances -----------------------------------------------------------------------------------


def test_partitions_assigned_during_a_broker_outage_start_paused_and_go_when_it_clears(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock
) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(2))
    consumer.rebalance(assign=[P0])
    publisher.refuse()
    turns(bridge, 1)

    kafka.produce(P1, *values(4))
    consumer.rebalance(assign=[P1])
    turns(bridge, 3)

    assert consumer.paused == {P0, P1}
    assert consumer.returned_offsets(P1) == [], "paused before its first fetch"

    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 3)
    assert publisher.offsets(P0) == [0, 1] and publisher.offsets(P1) == [0, 1, 2, 3]


def test_partitions_revoked_during_a_broker_outage_are_forgotten_and_never_committed_past_what_was_confirmed(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Given two partitions whose first messages were published and committed
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(2))
    kafka.produce(P1, *values(2))
    consumer.rebalance(assign=[P0, P1])
    turns(bridge, 1)
    clock.advance(1.0)
    turns(bridge, 1)
    assert kafka.committed == {P0: 2, P1: 2}

    # When more arrive while the broker is down, and P1 is revoked meanwhile
    kafka.produce(P0, *values(2, start=2))
    kafka.produce(P1, *values(2, start=2))
    publisher.refuse()
    turns(bridge, 1)
    consumer.rebalance(revoke=[P1])
    turns(bridge, 1)

    # Then P1's held messages are dropped and left to the next owner; only P0's go after the outage
    assert any("could not publish 2 held message(s) of revoked partitions" in r.getMessage() for r in caplog.records)
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 2)
    clock.advance(1.0)
    turns(bridge, 1)
    assert publisher.offsets(P1) == [0, 1]
    assert publisher.offsets(P0) == [0, 1, 2, 3]
    assert kafka.committed == {P0: 4, P1: 2}
    assert consumer.stray_commits == []


def test_a_partition_revoked_between_the_two_consumes_of_a_turn_publishes_and_commits_what_it_returned(
    kafka: FakeKafka, publisher: FakePublisher
) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(6))
    consumer.rebalance(assign=[P0])
    consumer.rebalance(revoke=[P0], after_consumes=1)  # inside the turn's second consume()

    turns(bridge, 2)

    assert consumer.returned_offsets(P0) == [0]
    assert publisher.offsets(P0) == [0]
    assert kafka.committed == {P0: 1} and consumer.stray_commits == []


def test_a_lost_partition_is_forgotten_without_a_commit(kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(3))
    consumer.rebalance(assign=[P0])
    publisher.refuse()
    turns(bridge, 1)

    consumer.rebalance(lose=[P0])
    turns(bridge, 1)
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 3)

    assert publisher.offsets(P0) == [] and consumer.commits == []


def test_an_outage_with_nothing_left_to_probe_with_lets_new_partitions_fetch_after_the_backoff(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock
) -> None:
    # Given an outage whose held messages went with their revoked partition, and a new partition
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(2))
    kafka.produce(P1, *values(2))
    consumer.rebalance(assign=[P0])
    publisher.refuse()
    turns(bridge, 1)
    consumer.rebalance(revoke=[P0], assign=[P1])
    turns(bridge, 1)
    assert {P1} in consumer.pause_calls and consumer.returned_offsets(P1) == [], "assigned paused"

    # When the backoff is over: P1 fetches again, and its messages are the probe
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 3)

    assert publisher.offsets(P1) == [0, 1]
    assert consumer.paused == set()


# -- commits --------------------------------------------------------------------------------------


def test_only_confirmed_offsets_are_committed(kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock) -> None:
    # Given a batch of five the broker confirms only the first two of
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(5))
    consumer.rebalance(assign=[P0])
    publisher.accept_only(2)
    publisher.refuse()
    turns(bridge, 1)

    # When commits come due, again and again, while the rest is refused
    for _ in range(5):
        clock.advance(1.0)
        turns(bridge, 1)

    # Then only the confirmed ones are committed, and the rest once they are confirmed
    assert {offsets[P0] for offsets in consumer.commits} == {2}
    assert kafka.committed == {P0: 2}
    publisher.accept()
    clock.advance(LONGEST_OUTAGE_DELAY)
    turns(bridge, 1)
    clock.advance(1.0)
    turns(bridge, 1)
    assert kafka.committed == {P0: 5}
    assert publisher.offsets(P0) == [0, 1, 2, 3, 4]


def test_a_stop_publishes_what_is_held_then_commits_and_closes(kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock) -> None:
    bridge, consumer = start_bridge(kafka, publisher)
    kafka.produce(P0, *values(3))
    consumer.rebalance(assign=[P0])
    publisher.refuse(times=3)
    turns(bridge, 1)

    started = clock()
    bridge.stop()
    bridge.run()

    assert publisher.offsets(P0) == [0, 1, 2]
    assert kafka.committed == {P0: 3}
    assert consumer.closed and clock() - started < 30


def test_a_stop_gives_up_after_the_shutdown_timeout_and_commits_nothing_unconfirmed(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, consumer = start_bridge(kafka, publisher, shutdown_timeout=20.0)
    kafka.produce(P0, *values(3))
    consumer.rebalance(assign=[P0])
    publisher.refuse()
    turns(bridge, 1)

    started = clock()
    bridge.stop()
    bridge.run()

    assert 20 <= clock() - started <= 20 + LONGEST_OUTAGE_DELAY
    assert any("stopping with 3 unpublished message(s)" in r.getMessage() for r in caplog.records)
    assert kafka.committed == {} and consumer.closed


# -- joining the group ----------------------------------------------------------------------------


def test_a_bridge_stopped_before_it_was_assigned_any_partition_says_so_and_stops_quietly(
    kafka: FakeKafka, publisher: FakePublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bridge, consumer = start_bridge(kafka, publisher)
    turns(bridge, 2)

    bridge.stop()
    bridge.run()

    assert any("stopped before it was assigned any partition of group 'g'; nothing to commit" in r.getMessage() for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [], "librdkafka's leave timeout is not news"
    assert consumer.commits == [] and consumer.closed


def test_a_bridge_without_partitions_says_every_ten_seconds_what_it_waits_for(
    kafka: FakeKafka, publisher: FakePublisher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bridge, consumer = start_bridge(kafka, publisher)
    started = clock()
    while clock() - started < 25:
        bridge.run_once()
    consumer.rebalance(assign=[P0])
    while clock() - started < 45:
        bridge.run_once()

    waiting = [r.getMessage() for r in caplog.records if "waiting for partitions" in r.getMessage()]
    assert len(waiting) == 2
    assert "waiting for partitions of group 'g'" in waiting[0] and "session.timeout.ms=6000" in waiting[0]


def test_a_group_instance_id_from_the_environment_makes_the_bridge_a_static_member(
    kafka: FakeKafka, publisher: FakePublisher
) -> None:
    settings = BridgeSettings.from_mapping({"GROUP_ID": "g"}, environ={"KAFKABRIDGE_GROUP_INSTANCE_ID": "bridge-1"})
    static = Bridge(settings=settings, topics=["orders"], publisher=publisher)
    dynamic = Bridge(settings=BridgeSettings(group_id="g"), topics=["orders"], publisher=publisher)

    assert settings.group_instance_id == "bridge-1"
    assert static.consumer_config()["group.instance.id"] == "bridge-1"
    assert "group.instance.id" not in dynamic.consumer_config()
