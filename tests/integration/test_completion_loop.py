"""Completion-tracked commits in the loop: a fake Kafka and publisher, the real completion ledger on Redis.

The test plays the workers: it tells the ledger what they would (a run began, an outcome is final).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import pytest
import redis

from kafkabridge import MessageId
from kafkabridge.completion import CompletionLedger
from kafkabridge.consumer.bridge import Bridge
from kafkabridge.consumer.completion import CompletionTracking
from kafkabridge.settings import BridgeSettings
from tests.support import wait_until
from tests.unit.fake_kafka import FakeClock, FakeConsumer, FakeKafka, FakePublisher

P0, P1 = ("orders", 0), ("orders", 1)
COMPLETION_TIMEOUT = 60.0


@pytest.fixture
def ledger(services: None, ns: str) -> Iterator[CompletionLedger]:
    client = redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))
    yield CompletionLedger(client, group="g", prefix=f"{ns}:completion")
    for key in client.scan_iter(f"{ns}:completion:*", count=1000):
        client.delete(key)


@pytest.fixture
def kafka() -> FakeKafka:
    return FakeKafka(FakeClock())


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


def start(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger, *, sleep: Callable[[float], None] | None = None,
    **options: Any,
) -> tuple[Bridge, FakeConsumer]:
    settings = BridgeSettings(**{"group_id": "g", "batch_size": 10, "commit_interval": 1.0, "shutdown_timeout": 5.0, **options})
    tracking = CompletionTracking(ledger, timeouts={"orders": COMPLETION_TIMEOUT})
    bridge = Bridge(settings=settings, topics=["orders"], publisher=publisher, consumer_factory=kafka.consumer,
                    completion=tracking, clock=kafka.clock, sleep=sleep or kafka.clock.sleep)
    bridge.start()
    consumer = kafka.last_consumer
    consumer.rebalance(assign=[P0, P1])
    return bridge, consumer


def turn(bridge: Bridge, kafka: FakeKafka, seconds: float = 1.0) -> None:
    """One turn of the loop, then the clock moves on (so that the commit interval comes round)."""
    bridge.run_once()
    kafka.clock.advance(seconds)


def finish(ledger: CompletionLedger, *offsets: int, partition: int = 0) -> None:
    ledger.finish([MessageId("orders", partition, offset) for offset in offsets])


def test_offsets_are_committed_only_below_the_first_message_without_an_outcome(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, *[b"v"] * 5)
    bridge, consumer = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 1, 2, 3, 4]
    assert all(d.group == "g" and d.token for d in publisher.deliveries), "each dispatch is tracked"
    turn(bridge, kafka)
    assert kafka.committed.get(P0) is None, "published is not final"

    finish(ledger, 0, 1, 3)
    turn(bridge, kafka), turn(bridge, kafka)
    assert kafka.committed[P0] == 2, "offset 2 has no outcome: nothing past it"

    finish(ledger, 2, 4)
    turn(bridge, kafka), turn(bridge, kafka)
    assert kafka.committed[P0] == 5
    assert ledger.begin(MessageId("orders", 0, 1), "late copy", lease_seconds=5).verdict == "done", "the floor follows the commit"


def test_a_message_whose_lease_ran_out_is_dispatched_again_and_the_older_copy_stands_down(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, b"v")
    bridge, _ = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    first = publisher.deliveries[-1].token
    assert ledger.begin(MessageId("orders", 0, 0), first, lease_seconds=0.05).verdict == "run"  # a worker took it, then died
    wait_until(lambda: ledger.progress({P0: [0]})[P0].leases[0] < 0, timeout=5, what="the lease to run out", interval=0.02)

    turn(bridge, kafka), turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 0], "dispatched again from what the bridge holds"
    second = publisher.deliveries[-1].token
    assert second != first
    assert ledger.begin(MessageId("orders", 0, 0), first, lease_seconds=5).verdict == "superseded"
    assert ledger.begin(MessageId("orders", 0, 0), second, lease_seconds=5).verdict == "run"
    finish(ledger, 0)
    turn(bridge, kafka), turn(bridge, kafka)
    assert kafka.committed[P0] == 1 and publisher.offsets(P0) == [0, 0]


def test_a_message_that_never_started_is_dispatched_again_after_its_completion_timeout_only(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, b"v")
    bridge, _ = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    turn(bridge, kafka, seconds=COMPLETION_TIMEOUT - 5)
    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0], "still within its completion timeout: it may be queued behind others"
    turn(bridge, kafka, seconds=10)
    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 0], "lost with the broker or in a dead worker's reservation: sent again"


def test_a_waiting_retry_with_a_live_lease_is_not_dispatched_again(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, b"v")
    bridge, _ = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    token = publisher.deliveries[-1].token
    message = MessageId("orders", 0, 0)
    ledger.begin(message, token, lease_seconds=30)
    ledger.retry_scheduled(message, token, attempts=1, lease_seconds=3600)  # an hour-long countdown
    turn(bridge, kafka, seconds=COMPLETION_TIMEOUT * 2)
    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0]
    assert kafka.committed.get(P0) is None


def test_when_redis_loses_the_ledger_every_unfinished_message_is_dispatched_again(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, *[b"v"] * 3)
    bridge, _ = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    finish(ledger, 0)
    turn(bridge, kafka), turn(bridge, kafka)
    assert kafka.committed[P0] == 1
    ledger._redis.delete(*ledger.keys("orders", 0).values())  # a Redis restart without its data

    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 1, 2, 1, 2], "1 and 2 again, at once; 0 was committed"
    assert ledger.progress({P0: [1]})[P0].floor_known, "the floor is written again"
    finish(ledger, 1, 2)
    turn(bridge, kafka), turn(bridge, kafka)
    assert kafka.committed[P0] == 3


def test_a_partition_at_its_in_flight_bound_is_held_while_the_others_flow(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, *[b"v"] * 20)
    kafka.produce(P1, *[b"v"] * 3)
    bridge, consumer = start(kafka, publisher, ledger, max_in_flight=4)
    for _ in range(4):
        turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 1, 2, 3], "never more than the bound in flight"
    assert publisher.offsets(P1) == [0, 1, 2]
    assert P0 in consumer.paused and P1 not in consumer.paused

    finish(ledger, 0, 1)
    for _ in range(3):
        turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 1, 2, 3, 4, 5], "room for two more, in order, none lost or twice"
    assert kafka.committed[P0] == 2


def test_a_stopping_bridge_waits_for_its_in_flight_messages_before_the_last_commit(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, *[b"v"] * 3)
    bridge, _ = start(kafka, publisher, ledger)
    turn(bridge, kafka)
    finish(ledger, 0, 1, 2)
    bridge.stop()
    bridge.run()  # finishes: publishes nothing new, checks the ledger, commits, closes
    assert kafka.committed[P0] == 3


def test_a_stopping_bridge_publishes_what_it_holds_as_outcomes_make_room_under_the_bound(
    kafka: FakeKafka, publisher: FakePublisher, ledger: CompletionLedger
) -> None:
    kafka.produce(P0, *[b"v"] * 6)

    def workers_finish_while_the_bridge_waits(seconds: float) -> None:
        finish(ledger, *publisher.offsets(P0))
        kafka.clock.sleep(seconds)

    bridge, _ = start(kafka, publisher, ledger, max_in_flight=2, sleep=workers_finish_while_the_bridge_waits)
    turn(bridge, kafka)
    assert publisher.offsets(P0) == [0, 1], "the rest is held at the bound"
    bridge.stop()
    bridge.run()
    assert publisher.offsets(P0) == [0, 1, 2, 3, 4, 5]
    assert kafka.committed[P0] == 6
