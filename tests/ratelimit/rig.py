"""Worker and bridge processes on the rate-limit settings, with each test's limits; the Redis state they leave."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import redis

from kafkabridge.ratelimit.redis_bucket import DEFAULT_PREFIX
from tests import support

SETTINGS = "tests.ratelimit.settings"


def limits_env(
    *,
    rate_limits: Mapping[str, Mapping[str, Any]] | None = None,
    throttle: Mapping[str, Any] | None = None,
    redis_url: str | None = None,
) -> dict[str, str]:
    """The variables ``tests.ratelimit.settings`` reads: intake limits by topic, the handlers' limit, the limiter's Redis."""
    env = {}
    if rate_limits is not None:
        env["KBTEST_RATE_LIMITS"] = json.dumps(rate_limits)
    if throttle is not None:
        env["KBTEST_THROTTLE"] = json.dumps(throttle)
    if redis_url is not None:
        env["KBTEST_RATE_LIMIT_REDIS"] = redis_url
    return env


def process_env(ns: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {**support.process_env(ns), "DJANGO_SETTINGS_MODULE": SETTINGS, **extra}


def spawn_worker(ns: str, log_dir: Path, env: Mapping[str, str], *, concurrency: int = 2) -> support.ServiceProcess:
    """A prefork worker on queue ``ns``, starting; several may run at once (each has its own node name and log)."""
    index = len(list(log_dir.glob(f"worker-{ns}-*.log")))
    return support.ServiceProcess(
        "worker",
        [str(support.BIN / "celery"), "-A", "dashboard", "worker", "-l", "info", "-P", "prefork", "-c", str(concurrency),
         "-Q", ns, "-n", f"{ns}-{index}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        process_env(ns, env),
        log_dir / f"worker-{ns}-{index}.log",
    )


def spawn_bridge(ns: str, topics: Iterable[str], log_dir: Path, env: Mapping[str, str]) -> support.ServiceProcess:
    """A ``runbridge`` process of group ``ns``, starting."""
    argv = [sys.executable, "manage.py", "runbridge", "--group-id", ns]
    for topic in topics:
        argv += ["--topic", topic]
    index = len(list(log_dir.glob(f"bridge-{ns}-*.log")))
    return support.ServiceProcess("bridge", argv, process_env(ns, env), log_dir / f"bridge-{ns}-{index}.log")


def ready(process: support.ServiceProcess) -> support.ServiceProcess:
    """Returns once a worker is ready, or a bridge has been assigned partitions."""
    process.wait_for_log(r"ready\." if process.name == "worker" else r"assigned .*\[\d+\]", timeout=60)
    return process


def start_worker(ns: str, log_dir: Path, env: Mapping[str, str], *, concurrency: int = 2) -> support.ServiceProcess:
    return ready(spawn_worker(ns, log_dir, env, concurrency=concurrency))


def start_bridge(ns: str, topics: Iterable[str], log_dir: Path, env: Mapping[str, str]) -> support.ServiceProcess:
    return ready(spawn_bridge(ns, topics, log_dir, env))


def bucket_keys(client: redis.Redis, ns: str) -> list[bytes]:
    """The token buckets of this test's groups, topics and handlers (their names hold the namespace)."""
    return list(client.scan_iter(f"{DEFAULT_PREFIX}:{{*{ns}*", count=1000))


def forget_state(client: redis.Redis, ns: str) -> None:
    """Remove what this test's processes left in Redis ``client``: buckets, overrides, effective rates,
    its Celery queue, the tasks its killed workers held, and its completion ledger (the instance registry
    ages out by itself in 30 s)."""
    keys = bucket_keys(client, ns) + list(client.scan_iter(f"kafkabridge:completion:{{{ns}|*", count=1000))
    if keys:
        client.delete(*keys)
    for hash_key in (f"{DEFAULT_PREFIX}:overrides", f"{DEFAULT_PREFIX}:effective"):
        fields = [field for field in client.hkeys(hash_key) if ns.encode() in field]
        if fields:
            client.hdel(hash_key, *fields)
    client.delete(ns)
    forget_unacked(client, ns)


def forget_unacked(client: redis.Redis, queue: str) -> None:
    """Tasks of ``queue`` that killed workers held: kombu's Redis transport keeps them in the hash ``unacked``
    (tag → [message, exchange, routing key]) and would put them back in ``queue`` after the visibility timeout."""
    for tag, entry in client.hscan_iter("unacked", count=1000):
        try:
            routing_key = json.loads(entry)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def start(ns: str, log_dir: Path, env: Mapping[str, str], *, topics: Iterable[str], workers: int = 1, bridges: int = 1,
          concurrency: int = 2) -> list[support.ServiceProcess]:
    """Workers and bridges of one test, started together; returns once every one is ready. Bridges join one
    after the other (each once the previous one was assigned partitions), so that they share them out."""
    started = [spawn_worker(ns, log_dir, env, concurrency=concurrency) for _ in range(workers)]
    started += [ready(spawn_bridge(ns, topics, log_dir, env)) for _ in range(bridges)]
    return [ready(process) for process in started]
