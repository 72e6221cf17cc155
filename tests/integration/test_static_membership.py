"""Joining a group that a killed member still holds: static membership, and stopping before the join ends.

A killed member owns its partitions until Kafka expires its session (the test settings: 6 s, a
heartbeat every second). A replacement with the same ``GROUP_INSTANCE_ID`` takes them back at once;
one without waits for the session to expire. A bridge stopped while it still waits leaves quietly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests import support

SESSION_TIMEOUT = 6.0  # tests/settings.py CONSUMER_CONFIG session.timeout.ms
HEARTBEAT_INTERVAL = 1.0  # tests/settings.py CONSUMER_CONFIG heartbeat.interval.ms


def start_bridge(ns: str, topic: str, logs: Path, name: str, *, group_id: str, instance_id: str | None = None) -> support.ServiceProcess:
    """A ``runbridge`` process; with ``instance_id``, a static member through ``KAFKABRIDGE_GROUP_INSTANCE_ID``."""
    env = support.process_env(ns)
    if instance_id:
        env["KAFKABRIDGE_GROUP_INSTANCE_ID"] = instance_id
    argv = [sys.executable, "manage.py", "runbridge", "--group-id", group_id, "--topic", topic]
    return support.ServiceProcess("bridge", argv, env, logs / f"{name}.log")


def logged_at(process: support.ServiceProcess, text: str) -> float:
    """Wall-clock time of the first log line containing ``text`` (the runbridge log format starts with asctime)."""
    line = next(line for line in process.log().splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def kill_9_once_assigned(bridge: support.ServiceProcess, topic: str) -> float:
    """Wall-clock time at which ``bridge`` died by SIGKILL while it owned ``topic``'s partitions."""
    bridge.wait_for_log(rf"assigned {topic}\[0\]", timeout=60)
    bridge.signal(signal.SIGKILL)
    bridge.process.wait(10)
    return time.time()


def replacement_wait(ns: str, topic: str, logs: Path, bridges: list, *, name: str, instance_id: str | None) -> tuple[float, float]:
    """Kill -9 a bridge of a new group and start its replacement: (seconds from kill to the replacement's
    subscribe, seconds from kill to its assignment)."""
    group_id = f"{ns}-{name}"
    first = start_bridge(ns, topic, logs, f"{name}-first", group_id=group_id, instance_id=instance_id)
    bridges.append(first)
    killed_at = kill_9_once_assigned(first, topic)
    second = start_bridge(ns, topic, logs, f"{name}-second", group_id=group_id, instance_id=instance_id)
    bridges.append(second)
    second.wait_for_log(rf"assigned {topic}\[0\]", timeout=60)
    return logged_at(second, "bridge consuming") - killed_at, logged_at(second, f"assigned {topic}[0]") - killed_at


def test_a_bridge_restarted_with_the_same_group_instance_id_takes_its_partitions_back_before_the_session_expires(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])

    subscribed, static_assigned = replacement_wait(ns, topic, logs, bridges, name="static", instance_id=f"{ns}-bridge-1")
    _, dynamic_assigned = replacement_wait(ns, topic, logs, bridges, name="dynamic", instance_id=None)

    print(f"\nafter kill -9: static replacement assigned in {static_assigned:.1f}s (subscribed at {subscribed:.1f}s), "
          f"dynamic replacement in {dynamic_assigned:.1f}s; session timeout {SESSION_TIMEOUT:.0f}s")
    assert subscribed < SESSION_TIMEOUT - 1, f"inconclusive: the replacement took {subscribed:.1f}s to start, the old session had expired"
    assert static_assigned < SESSION_TIMEOUT - 1, f"static replacement assigned {static_assigned:.1f}s after the kill"
    assert dynamic_assigned >= SESSION_TIMEOUT - HEARTBEAT_INTERVAL, f"dynamic replacement assigned after {dynamic_assigned:.1f}s"
    assert dynamic_assigned - static_assigned > 1.5


DEAD_MEMBER = """
import sys
from confluent_kafka import Consumer
consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 45000,
                     "partition.assignment.strategy": "cooperative-sticky"})
consumer.subscribe([sys.argv[3]], on_assign=lambda c, p: print("assigned", flush=True))
while True:
    consumer.consume(1, 0.2)
"""


def hold_the_group_with_a_killed_member(group_id: str, topic: str) -> None:
    """A member with a 45 s session joins, takes every partition and is killed: the group waits for it."""
    member = subprocess.Popen([sys.executable, "-c", DEAD_MEMBER, support.KAFKA, group_id, topic], stdout=subprocess.PIPE, text=True)
    try:
        assert member.stdout is not None and member.stdout.readline().strip() == "assigned"
    finally:
        member.kill()
        member.wait(10)


def test_a_bridge_stopped_before_it_was_assigned_any_partition_stops_quietly_and_says_so(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path
) -> None:
    topic = f"{ns}.record"
    support.create_topics(kafka_admin, [topic])
    hold_the_group_with_a_killed_member(ns, topic)
    bridge = start_bridge(ns, topic, logs, "waiting", group_id=ns)
    bridges.append(bridge)
    bridge.wait_for_log(r"bridge consuming", timeout=60)
    time.sleep(1.0)  # its join is in flight, behind the dead member's session

    bridge.signal(signal.SIGTERM)
    assert bridge.process.wait(30) == 0

    log = bridge.log()
    assert ": assigned " not in log, "inconclusive: the bridge was assigned partitions before it stopped"
    assert f"stopped before it was assigned any partition of group '{ns}'; nothing to commit" in log
    assert "bridge closed" in log
    noise = [line for line in log.splitlines() if "REQTMOUT" in line or "Timed out" in line or line.startswith("%")]
    assert noise == [], f"raw librdkafka noise on close: {noise}"
