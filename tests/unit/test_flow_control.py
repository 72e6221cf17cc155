"""Flow control on its own: the causes' answers and how FlowControl combines them (no consumer involved)."""

from __future__ import annotations

from typing import Mapping

from kafkabridge.consumer.flow_control import BrokerOutage, Cause, Counts, FlowControl, next_look
from kafkabridge.errors import PublishError

P0, P1, P2 = ("orders", 0), ("orders", 1), ("orders", 2)
REFUSAL = PublishError(ConnectionRefusedError("down"), published=0)


def outage(delay: float = 2.0) -> BrokerOutage:
    return BrokerOutage(delay=lambda failures: delay * failures)


class Cap(Cause):
    """Test cause: lets at most ``limit`` messages of each partition through, and holds what it trims."""

    name = "cap"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.offered: list[dict] = []
        self.forgotten: list = []

    def admit(self, offered: Counts, now: float) -> Counts:
        self.offered.append(dict(offered))
        return {partition: self.limit for partition in offered}

    def holds(self, pending: Counts, now: float) -> Mapping:
        return {partition: now + 5 for partition, count in pending.items() if count > self.limit}

    def forget(self, partitions) -> None:
        self.forgotten.append(set(partitions))


def test_the_broker_outage_holds_nothing_until_a_publish_is_refused() -> None:
    cause = outage()
    assert cause.admit({P0: 3}, now=0) == {}
    assert cause.holds({P0: 3, P1: 0}, now=0) == {}


def test_a_refused_publish_holds_every_partition_and_admits_nothing_until_the_retry_time() -> None:
    cause = outage(delay=2.0)
    cause.refused([], REFUSAL, now=10)
    assert cause.admit({P0: 3, P1: 1}, now=11) == {P0: 0, P1: 0}
    assert cause.holds({P0: 3, P1: 0, P2: 0}, now=11) == {P0: 12, P1: 12, P2: 12}


def test_at_the_retry_time_the_held_messages_go_as_a_probe_while_partitions_stay_held() -> None:
    cause = outage(delay=2.0)
    cause.refused([], REFUSAL, now=10)
    assert cause.admit({P0: 3}, now=12) == {}
    assert cause.holds({P0: 3, P1: 0}, now=12) == {P0: None, P1: None}


def test_each_refused_probe_waits_longer() -> None:
    cause = outage(delay=2.0)
    cause.refused([], REFUSAL, now=10)
    cause.refused([], REFUSAL, now=12)
    assert cause.admit({P0: 1}, now=15) == {P0: 0}
    assert cause.holds({P0: 1}, now=15) == {P0: 16}


def test_a_successful_publish_clears_the_outage() -> None:
    cause = outage()
    cause.refused([], REFUSAL, now=10)
    cause.published([], now=12)
    assert cause.admit({P0: 3}, now=12) == {}
    assert cause.holds({P0: 3}, now=12) == {}


def test_with_nothing_to_probe_with_after_the_backoff_partitions_may_fetch_until_the_next_refusal() -> None:
    cause = outage(delay=2.0)
    cause.refused([], REFUSAL, now=10)
    assert cause.holds({P1: 0}, now=12.5) == {}
    assert cause.holds({P1: 4}, now=13) == {}, "lifted: the next publish is the probe, no pause before it"
    cause.refused([], REFUSAL, now=13)
    assert cause.holds({P1: 4}, now=13) == {P1: 17}


def test_each_cause_is_offered_only_what_the_causes_before_it_let_through() -> None:
    broker, cap = outage(), Cap(limit=2)
    flow = FlowControl([broker, cap])
    assert flow.admit({P0: 5, P1: 1, P2: 0}, now=0) == {P0: 2, P1: 1}
    assert cap.offered == [{P0: 5, P1: 1}]

    broker.refused([], REFUSAL, now=0)
    assert flow.admit({P0: 5}, now=1) == {}
    assert cap.offered[-1] == {}, "a cause later in line is not asked about messages that cannot go"


def test_holds_name_every_cause_holding_a_partition_and_when_it_looks_again() -> None:
    broker, cap = outage(delay=2.0), Cap(limit=2)
    flow = FlowControl([broker, cap])
    broker.refused([], REFUSAL, now=10)
    holds = flow.holds({P0: 5, P1: 1}, now=10)
    assert holds == {P0: {"broker outage": 12, "cap": 15}, P1: {"broker outage": 12}}
    assert next_look(holds, now=10) == 12
    assert next_look(holds, now=12) == 15, "times already past are not a reason to wake"


def test_forgetting_partitions_reaches_every_cause() -> None:
    cap = Cap(limit=1)
    FlowControl([outage(), cap]).forget({P1})
    assert cap.forgotten == [{P1}]
