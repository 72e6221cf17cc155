"""Prometheus metrics from hook events, and the ``/metrics`` endpoint of bridges and workers.

Turn them on with ``KAFKABRIDGE["HOOKS"] = ["kafkabridge.observability.metrics.PrometheusHooks"]`` and
``KAFKABRIDGE["METRICS_PORT"] = 9400`` (or ``KAFKABRIDGE_METRICS_PORT`` per process). ``runbridge``
then serves ``/metrics`` on that port, and so does a Celery worker's main process, for its whole
pool: pool processes write their values to files in ``PROMETHEUS_MULTIPROC_DIR`` (Prometheus'
multi-process mode; set it, to an empty directory of that worker alone, before the worker starts),
the main process empties the directory at start, reads it at each scrape (``MultiProcessCollector``)
and a pool process that exits is marked dead (``worker_process_shutdown``). Without the variable a
prefork worker serves its main process's values only, which hold none of the handlers' (it warns).

Every name starts with ``kafkabridge_``; labels are bounded: ``topic``, ``partition``, ``handler``
(a task name), never a key or an offset. Which process exports what is in docs/observability.md.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from celery.signals import worker_init, worker_process_shutdown
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess

from ..hooks import Hooks

if TYPE_CHECKING:
    from ..completion import Progress
    from ..dead_letter import DeadLetterRecord
    from ..message import Message, MessageId

logger = logging.getLogger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, for produce latency; librdkafka's ``linger.ms`` (5 ms by default) is the floor."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds, for handler runs and rate-limit waits (time limits default to 300 s)."""


class Metrics:
    """The kafkabridge metrics of one registry (names and meanings in docs/observability.md)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        topic, handler, partition = ("topic",), ("topic", "handler"), ("topic", "partition")
        self.produced = Counter("kafkabridge_produced", "Records a Producer delivered to Kafka", topic, registry=registry)
        self.produce_failed = Counter("kafkabridge_produce_failed", "Records a Producer could not deliver", topic, registry=registry)
        self.produce_latency = Histogram(
            "kafkabridge_produce_latency_seconds", "From Producer.send to the broker's acknowledgement", topic,
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.published = Counter("kafkabridge_messages_published", "Messages the bridge consumed and handed to Celery, confirmed", topic, registry=registry)
        self.publish_failed = Counter("kafkabridge_publish_failed", "Messages the Celery broker refused (the bridge tries again)", topic, registry=registry)
        self.redispatched = Counter("kafkabridge_redispatched", "Messages the bridge dispatched again: nobody held them", topic, registry=registry)
        self.lag = Gauge("kafkabridge_consumer_lag", "Messages behind the end of the partition, held ones included", partition,
                         multiprocess_mode="livemostrecent", registry=registry)
        self.committed = Gauge("kafkabridge_committed_offset", "Next offset to read, as committed", partition,
                               multiprocess_mode="livemostrecent", registry=registry)
        self.in_flight = Gauge("kafkabridge_in_flight", "Messages published and without a final outcome yet", partition,
                               multiprocess_mode="livemostrecent", registry=registry)
        self.started = Counter("kafkabridge_handler_runs", "Handler runs started", handler, registry=registry)
        self.handled = Counter("kafkabridge_handled", "Messages whose handler returned", handler, registry=registry)
        self.failed = Counter("kafkabridge_handler_failures", "Runs that failed: retried, or dead-lettered with an error", handler, registry=registry)
        self.retried = Counter("kafkabridge_retries", "Retries scheduled after a failed run", handler, registry=registry)
        self.dead_lettered = Counter("kafkabridge_dead_lettered", "Messages stored as dead letters", handler, registry=registry)
        self.requeued = Counter("kafkabridge_requeued", "Dead letters an operator sent back to their handler", handler, registry=registry)
        self.duration = Histogram("kafkabridge_handler_duration_seconds", "Runs of handlers that returned", handler,
                                  buckets=DURATION_BUCKETS, registry=registry)
        self.rate_limited = Counter("kafkabridge_rate_limited", "Handler runs postponed for a token of their rate limit", handler, registry=registry)
        self.rate_limit_wait = Histogram("kafkabridge_rate_limit_wait_seconds", "How long a postponed run waits for its token", handler,
                                         buckets=DURATION_BUCKETS, registry=registry)
        self.rate_limit_degraded = Gauge("kafkabridge_rate_limit_degraded", "1 while Redis is unreachable and limits are local", ("kind",),
                                         multiprocess_mode="livemax", registry=registry)


@cache
def default_metrics() -> Metrics:
    """This process's metrics on the default registry, created once (a registry refuses a name twice)."""
    return Metrics()


class PrometheusHooks(Hooks):
    """Hook events → :class:`Metrics`. Also makes a Celery worker of this process serve them (see the module)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or default_metrics()
        install_worker_endpoint()

    def on_produced(self, topic: str, partition: int, seconds: float) -> None:
        self.metrics.produced.labels(topic).inc()
        self.metrics.produce_latency.labels(topic).observe(seconds)

    def on_produce_failed(self, topic: str, error: BaseException) -> None:
        self.metrics.produce_failed.labels(topic).inc()

    def on_batch_published(self, messages: Sequence[Message]) -> None:
        for topic, count in _per_topic(messages).items():
            self.metrics.published.labels(topic).inc(count)

    def on_publish_failed(self, messages: Sequence[Message], error: BaseException) -> None:
        for topic, count in _per_topic(messages).items():
            self.metrics.publish_failed.labels(topic).inc(count)

    def on_redispatched(self, messages: Sequence[Message], reasons: Sequence[str]) -> None:
        for topic, count in _per_topic(messages).items():
            self.metrics.redispatched.labels(topic).inc(count)

    def on_offsets_committed(self, offsets: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in offsets.items():
            self.metrics.committed.labels(topic, str(partition)).set(offset)

    def on_partition_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), lag in lags.items():
            self.metrics.lag.labels(topic, str(partition)).set(lag)

    def on_partition_progress(self, progress: Mapping[tuple[str, int], Progress]) -> None:
        for (topic, partition), state in progress.items():
            self.metrics.in_flight.labels(topic, str(partition)).set(state.in_flight)

    def on_handler_started(self, message: Message, handler: str) -> None:
        self.metrics.started.labels(message.topic, handler).inc()

    def on_handler_succeeded(self, message: Message, handler: str, seconds: float) -> None:
        self.metrics.handled.labels(message.topic, handler).inc()
        self.metrics.duration.labels(message.topic, handler).observe(seconds)

    def on_retry_scheduled(self, message: Message, handler: str, error: BaseException, countdown: float) -> None:
        self.metrics.retried.labels(message.topic, handler).inc()
        self.metrics.failed.labels(message.topic, handler).inc()

    def on_dead_lettered(self, record: DeadLetterRecord) -> None:
        topic = record.message.topic
        self.metrics.dead_lettered.labels(topic, record.handler).inc()
        if record.exception_class:  # a run that raised (not a crash loop or an unreadable record)
            self.metrics.failed.labels(topic, record.handler).inc()

    def on_requeued(self, message_id: MessageId, handler: str, task_id: str) -> None:
        self.metrics.requeued.labels(message_id.topic, handler).inc()

    def on_rate_limited(self, message: Message, handler: str, wait: float) -> None:
        self.metrics.rate_limited.labels(message.topic, handler).inc()
        self.metrics.rate_limit_wait.labels(message.topic, handler).observe(wait)

    def on_rate_limit_degraded(self, kind: str, live_instances: int) -> None:
        self.metrics.rate_limit_degraded.labels(kind).set(1)

    def on_rate_limit_restored(self, kind: str) -> None:
        self.metrics.rate_limit_degraded.labels(kind).set(0)


def _per_topic(messages: Sequence[Message]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.topic] = counts.get(message.topic, 0) + 1
    return counts


# -- serving /metrics ----------------------------------------------------------------------------

def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` shows: every process's files in multi-process mode, else this process's registry."""
    if not os.environ.get(MULTIPROC_DIR_VARIABLE):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread of this process."""
    start_http_server(port, addr=address, registry=scrape_registry())
    logger.info("serving Prometheus metrics on http://%s:%d/metrics", address, port)


def install_worker_endpoint() -> None:
    """Make a Celery worker of this process serve its pool's metrics (once; a no-op outside workers)."""
    worker_init.connect(_serve_worker_metrics, weak=False, dispatch_uid="kafkabridge.metrics.serve")
    worker_process_shutdown.connect(_mark_pool_process_dead, weak=False, dispatch_uid="kafkabridge.metrics.dead")


def _serve_worker_metrics(**_: object) -> None:
    """In the worker's main process, before the pool forks: empty the multi-process directory, then serve."""
    from .. import runtime

    port = runtime.current().settings.metrics_port
    if port is None:
        return
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        logger.warning("%s is not set: a prefork worker's /metrics shows its main process only, not its pool's handlers",
                       MULTIPROC_DIR_VARIABLE)
    serve_metrics(port, runtime.current().settings.metrics_address)


def _mark_pool_process_dead(**_: object) -> None:
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())
