"""The tasks benchmarks drain: a plain Celery no-op (the baseline) and a kafkabridge no-op handler."""

import os

from celery import shared_task

from kafkabridge import Message, kafka_handler

BENCH_TOPIC = os.environ.get("KB_BENCH_TOPIC", "bench.noop")


@shared_task(name="bench.noop", ignore_result=True)
def noop(*args: object, **kwargs: object) -> None:
    """Celery's own cost, nothing else."""


@kafka_handler(BENCH_TOPIC, name="bench.noop_handler")
def noop_handler(message: Message) -> None:
    """kafkabridge's cost on top of Celery's: envelope decoding, hooks, the retry wrapper."""
