"""/metrics scraped over HTTP from a real bridge and a real prefork worker during a scripted run."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from tests import support
from tests.app import recorder

Samples = dict[tuple[str, frozenset], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_bridge_and_worker_metrics_show_lag_retries_dead_letters_and_produce_latency(
    ns: str, kafka_admin: AdminClient, bridges: list, logs: Path, tmp_path: Path, database: None
) -> None:
    # Given: one partition per topic, at most one message in flight per partition (so a held handler
    # leaves the rest of its partition behind: lag), messages for each kind of outcome
    held, flaky, failing, forwards, forwarded = (f"{ns}.{name}" for name in ("held", "flaky", "always_fails", "forwards", "forwarded"))
    support.create_topics(kafka_admin, [held, flaky, failing, forwards, forwarded], partitions=1)
    support.produce(held, [(b"h", f"held {i}".encode(), None) for i in range(6)])
    support.produce(flaky, [(b"f", f"flaky {i}".encode(), None) for i in range(2)])
    support.produce(failing, [(b"x", b"fails", None)])
    support.produce(forwards, [(b"p", f"forward {i}".encode(), None) for i in range(3)])
    bridge_port, worker_port = free_port(), free_port()
    common = {"KBTEST_MAX_IN_FLIGHT": "1"}
    worker = support.start_worker(ns, logs, env=support.process_env(ns, extra={
        **common, "KAFKABRIDGE_METRICS_PORT": str(worker_port), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics"),
    }))
    try:
        bridges.append(support.start_bridge(ns, [held, flaky, failing, forwards], logs, env=support.process_env(ns, extra={
            **common, "KAFKABRIDGE_METRICS_PORT": str(bridge_port),
        })))

        # When the run is under way, one held message in flight: the bridge reports the other five as lag
        support.wait_until(lambda: port_answers(bridge_port) and value(scrape(bridge_port), "kafkabridge_consumer_lag", topic=held, partition="0") == 5,
                           timeout=60, what="the bridge to report a lag of 5 on the held partition")

        handler = "tests.app.tasks."
        expected_worker = {
            ("kafkabridge_handled_total", flaky, "fails_twice_then_succeeds"): 2,
            ("kafkabridge_retries_total", flaky, "fails_twice_then_succeeds"): 4,  # two failed runs each
            ("kafkabridge_handler_failures_total", flaky, "fails_twice_then_succeeds"): 4,
            ("kafkabridge_retries_total", failing, "always_fails"): 2,  # max_attempts=3
            ("kafkabridge_handler_failures_total", failing, "always_fails"): 3,
            ("kafkabridge_dead_lettered_total", failing, "always_fails"): 1,
            ("kafkabridge_handler_runs_total", failing, "always_fails"): 3,
            ("kafkabridge_handled_total", forwards, "forwards"): 3,
            ("kafkabridge_handler_duration_seconds_count", forwards, "forwards"): 3,
        }

        def worker_shows_everything_but_the_held() -> Samples | None:
            samples = scrape(worker_port)
            seen = {key: value(samples, key[0], topic=key[1], handler=handler + key[2]) for key in expected_worker}
            produced = value(samples, "kafkabridge_produce_latency_seconds_count", topic=forwarded)
            return samples if seen == expected_worker and produced == 3 else None

        samples = support.wait_until(worker_shows_everything_but_the_held, timeout=90, what="the worker's metrics of the run")
        assert value(samples, "kafkabridge_produced_total", topic=forwarded) == 3
        assert 0 < value(samples, "kafkabridge_produce_latency_seconds_sum", topic=forwarded) < 30  # type: ignore[operator]
        assert value(samples, "kafkabridge_produce_latency_seconds_bucket", topic=forwarded, le="+Inf") == 3
        assert value(samples, "kafkabridge_dead_lettered_total", topic=flaky, handler=handler + "fails_twice_then_succeeds") is None
        assert value(samples, "kafkabridge_retries_total", topic=forwards, handler=handler + "forwards") is None
        assert value(scrape(bridge_port), "kafkabridge_consumer_lag", topic=held, partition="0") == 5  # still held

        # Then, released, the held partition drains: lag 0, six handled, six published
        recorder.client().set(recorder.key("released", ns), 1)
        support.wait_until(
            lambda: value(scrape(worker_port), "kafkabridge_handled_total", topic=held, handler=handler + "waits_for_release") == 6,
            timeout=60, what="the six held messages to be handled",
        )

        def bridge_shows_the_held_partition_drained() -> Samples | None:
            samples = scrape(bridge_port)
            drained = value(samples, "kafkabridge_consumer_lag", topic=held, partition="0") == 0
            return samples if drained and value(samples, "kafkabridge_committed_offset", topic=held, partition="0") == 6 else None

        bridge = support.wait_until(bridge_shows_the_held_partition_drained, timeout=30, what="the held partition drained and committed")
        for topic, count in ((held, 6), (flaky, 2), (failing, 1), (forwards, 3)):
            assert value(bridge, "kafkabridge_messages_published_total", topic=topic) == count
            assert value(bridge, "kafkabridge_consumer_lag", topic=topic, partition="0") == 0
        assert value(bridge, "kafkabridge_redispatched_total", topic=held) is None
        final = scrape(worker_port)
        for key, expected in expected_worker.items():  # nothing counted twice meanwhile
            assert value(final, key[0], topic=key[1], handler=handler + key[2]) == expected, key
    finally:
        worker.stop()


def port_answers(port: int) -> bool:
    return support.port_open(port)
