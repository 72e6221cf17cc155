"""The Kafka broker dies mid-stream: nothing is lost, nothing is committed past unfinished work.

Scenarios 7 (the single broker of the suite killed with kill -9 and restarted) and 11 (one broker of
a three-broker cluster killed, topic replication factor 3 with min.insync.replicas 2).
"""

from __future__ import annotations

from typing import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests import support
from tests.fault.app import plan
from tests.fault.rig import Rig

pytestmark = pytest.mark.outage  # kills the suite's Kafka broker and the cluster's nodes: on a service set of its own (scripts/test's group "outage")

N = 200
RATE = 100.0
MID_STREAM = N // 6


def test_a_kafka_broker_killed_and_restarted_mid_stream_loses_nothing(rig: Rig, report) -> None:
    # Given a stream under way
    topic = rig.topic("fault")
    rig.start_worker()
    bridge = rig.start_bridge(topic)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts)
    run.wait_for_outcomes(MID_STREAM)

    # When the broker is killed with kill -9 (and started again once the bridge noticed)
    run.mark_fault()
    with support.killed("kafka"):
        bridge.wait_for_log(r"Kafka client error", timeout=60)
    run.mark_restored()

    # Then producer, bridge and commits carry on where they were; nothing is lost, nothing runs twice
    figures = rig.settle(run, timeout=180)
    report(7, "Kafka broker kill -9 and restart mid-stream loses nothing", "broker kill -9, restarted", figures)
    figures.assert_sound(duplicates=0)


@pytest.fixture
def kafka_cluster() -> Iterator[AdminClient]:
    """The on-demand three-broker cluster (``scripts/services up kafka-cluster``), stopped after the test."""
    support.control_service("up", "kafka-cluster")
    try:
        admin = AdminClient({"bootstrap.servers": support.KAFKA_CLUSTER})
        support.wait_until(lambda: len(admin.list_topics(timeout=10).brokers) == 3, timeout=60, what="three brokers in the cluster")
        yield admin
    finally:  # kill -9: quicker than a clean stop of three nodes, and the next start recovers their logs
        for node in (1, 2, 3):
            support.control_service("kill", f"kafka-cluster/{node}")


def group_coordinator(admin: AdminClient, group: str) -> int:
    return admin.describe_consumer_groups([group])[group].result(timeout=30).coordinator.id


def test_one_broker_of_three_killed_mid_stream_loses_nothing(rig: Rig, report, kafka_cluster: AdminClient) -> None:
    # Given a replicated topic (replication factor 3, min.insync.replicas 2) and a stream under way
    topic = rig.topic("fault", admin=kafka_cluster, replication_factor=3)
    rig.start_worker()
    rig.start_bridge(topic, KAFKA_BOOTSTRAP_SERVERS=support.KAFKA_CLUSTER)
    run = rig.stream(topic, n=N, rate=RATE, max_attempts=plan.POLICY.max_attempts, bootstrap=support.KAFKA_CLUSTER)
    run.wait_for_outcomes(MID_STREAM)

    # When the broker that coordinates the bridge's group is killed with kill -9, and stays down
    node = group_coordinator(kafka_cluster, rig.ns)
    run.mark_fault()
    support.control_service("kill", f"kafka-cluster/{node}")  # the fixture stops the cluster at the end
    figures = rig.settle(run, timeout=180)

    # Then the two others carry the stream on: nothing is lost, nothing runs twice
    figures.notes["killed_node"] = node
    report(11, "One broker of a three-broker cluster (RF 3, min ISR 2) killed mid-stream loses nothing",
           "group coordinator kill -9, left down", figures)
    figures.assert_sound(duplicates=0)
