"""What rate limiting costs when it does not bind (issue 8, item 8): ratios printed, not a timed test.

    .venv/bin/python -m bench.ratelimit            # 3 runs of each pair
    .venv/bin/python -m bench.ratelimit --quick    # smaller counts, 2 runs

1. The token bucket on Redis: calls per second of one token (n=1), of a batch grant (500 tokens of one
   bucket in one call), and of ten buckets in one pipelined round trip (the bridge's call per turn);
   the limiter's own path (overrides, heartbeats) and a handler's ``Throttle.take`` (made anew for each
   task, as ``HandlerTask._take_token`` does, and reused); a Redis PING as the yardstick.
2. The bridge, Kafka → Celery broker, in this process (``bench.scenarios.bridge_throughput``): with an
   intake limit set high enough never to bind vs none (target: ≤ 5% lower).
3. The worker's handler path: a stock ``celery worker`` draining a full queue of a no-op handler with a
   handler limit that never binds vs the same handler without one (target: ≤ 10% lower). The handlers
   are the rate-limit tests' (``tests.ratelimit.app``), the worker runs on ``tests.ratelimit.settings``
   against the benchmark's Redis database.

Each pair is measured back to back within a run, its order alternating between runs; the ratio is
taken per run, then the median over runs (the machine's load drifts between runs; pairing cancels most).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from typing import Callable

import redis

NON_BINDING = {"RATE": 1e9, "BURST": 1e9}
"""An intake limit no bridge reaches: every batch is granted whole, after one round trip per turn."""
BRIDGE_TARGET, WORKER_TARGET = 0.95, 0.90
"""Issue 8: a non-binding limit costs the bridge at most 5% of its throughput, the handler path at most 10%."""


def per_second(calls: int, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        action()
    return calls / (time.perf_counter() - started)


def bucket_calls(calls: int) -> dict[str, float]:
    """Calls per second of each way of taking tokens, against the benchmark's Redis."""
    from kafkabridge.ratelimit import Limit, RedisTokenBucket
    from kafkabridge.ratelimit.limiter import RateLimiter
    from kafkabridge.worker.throttle import Throttle

    from . import harness

    name = harness.unique("bench-bucket")
    prefix = f"{name}:ratelimit"
    client = harness.broker()
    bucket = RedisTokenBucket(client, prefix=prefix)
    limiter = RateLimiter(client, kind=name, prefix=prefix)  # its own registry key, not the processes'
    ten = [(f"{name}-{i}", 50, 1e9, 1e9) for i in range(10)]
    reused = Throttle(limiter, name, Limit(rate=1e9, burst=1e9))
    try:
        return {
            "Redis PING (one round trip)": per_second(calls, client.ping),
            "bucket, n=1": per_second(calls, lambda: bucket.take(name, 1, rate=1e9, burst=1e9)),
            "bucket, batch grant n=500": per_second(calls, lambda: bucket.take(name, 500, rate=1e9, burst=1e9)),
            "bucket, 10 buckets × 50 in one round trip": per_second(calls, lambda: bucket.take_many(ten)),
            "limiter, n=1 (overrides, heartbeat)": per_second(calls, lambda: limiter.take_many([(name, 1, 1e9, 1e9)])),
            "Throttle.take, a new Throttle per call (as a task)": per_second(
                calls, lambda: Throttle(limiter, name, Limit(rate=1e9, burst=1e9)).take(max_wait=0.0)),
            "Throttle.take, one Throttle reused": per_second(calls, lambda: reused.take(max_wait=0.0)),
        }
    finally:
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


def bridge_pair(app: object, topic: str, count: int, limited_first: bool) -> dict[str, float]:
    """Bridge throughput without a limit and with a non-binding one, back to back."""
    from kafkabridge import configure, runtime

    from . import harness, scenarios

    def run(limited: bool) -> float:
        before = runtime.current()
        settings = replace(before.settings, rate_limits={topic: NON_BINDING} if limited else {})
        configure(settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)
        try:
            return scenarios.bridge_throughput(app, topic, count)
        finally:
            configure(before.settings, hooks=before.hooks.hooks, dead_letter_store=before.dead_letters)

    order = (True, False) if limited_first else (False, True)
    try:
        results = {limited: run(limited) for limited in order}
    finally:
        forget_buckets(harness.broker(), topic)
    return {"none": results[False], "limited": results[True]}


def forget_buckets(client: redis.Redis, name: str) -> None:
    """The buckets and effective rates whose names hold ``name`` (a topic, a test namespace)."""
    keys = list(client.scan_iter(f"kafkabridge:ratelimit:{{*{name}*", count=1000))
    if keys:
        client.delete(*keys)
    fields = [field for field in client.hkeys("kafkabridge:ratelimit:effective") if name.encode() in field]
    if fields:
        client.hdel("kafkabridge:ratelimit:effective", *fields)


def drain(app: object, handler: str, pool: str, count: int) -> float:
    """A full queue of ``handler`` tasks drained by a ``celery worker`` of ``pool`` (tasks per second)."""
    from . import harness, scenarios

    ns, idle = harness.unique("kbrl").replace("-", ""), harness.unique("idle")
    broker = harness.broker()
    worker = harness.start_worker(pool, idle, DJANGO_SETTINGS_MODULE="tests.ratelimit.settings", KBTEST_NS=ns)
    try:
        scenarios._fill_queue(app, ns, f"{ns}.{handler}", count)  # published as the bridge publishes them
        started = time.perf_counter()
        app.control.add_consumer(ns, destination=[f"{worker.name}@{os.uname().nodename}"], reply=True, timeout=10)  # type: ignore[attr-defined]
        harness.wait_until(lambda: broker.llen(ns) == 0 and broker.hlen("unacked") == 0, 600, f"{ns} to drain")
        return count / (time.perf_counter() - started)
    finally:
        worker.stop()
        forget_buckets(broker, ns)
        leftovers = list(broker.scan_iter(f"*{ns}*", count=1000))  # the queue, kombu's bindings of it
        if leftovers:
            broker.delete(*leftovers)
        recorded = list(redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")).scan_iter(f"{ns}:*", count=1000))
        if recorded:  # what the test app's hooks wrote (rate-limit events)
            redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2")).delete(*recorded)


def worker_pair(app: object, pool: str, count: int, limited_first: bool) -> dict[str, float]:
    order = ("throttled_noop", "noop") if limited_first else ("noop", "throttled_noop")
    results = {handler: drain(app, handler, pool, count) for handler in order}
    return {"none": results["noop"], "limited": results["throttled_noop"]}


def show_pairs(title: str, pairs: list[dict[str, float]], unit: str, target: float) -> None:
    ratios = [pair["limited"] / pair["none"] for pair in pairs]
    median = statistics.median(ratios)
    print(f"\n{title}")
    print(f"  {'run':<5} {'no limit':>12} {'non-binding limit':>18} {'ratio':>7}")
    for index, (pair, ratio) in enumerate(zip(pairs, ratios), 1):
        print(f"  {index:<5} {pair['none']:>12,.0f} {pair['limited']:>18,.0f} {ratio:>7.3f}")
    print(f"  median {statistics.median(p['none'] for p in pairs):>11,.0f} {statistics.median(p['limited'] for p in pairs):>18,.0f} "
          f"{median:>7.3f}   ({unit}; ratio = limited / none, median of per-run ratios; target ≥ {target:.2f}: "
          f"{'met' if median >= target else 'NOT met'}; overhead {1 - median:+.1%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, 2 runs")
    parser.add_argument("--runs", type=int, default=None, help="runs of each pair (default 3, quick 2)")
    parser.add_argument("--only", default="bucket,bridge,worker", help="comma-separated: bucket, bridge, worker")
    options = parser.parse_args(argv)
    runs = options.runs or (2 if options.quick else 3)
    sizes = {"calls": 2_000 if options.quick else 5_000, "bridge": 30_000 if options.quick else 100_000,
             "drain": 1_500 if options.quick else 4_000}
    parts = set(options.only.split(","))

    from . import harness

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["CELERY_BROKER_URL"] = harness.BROKER_URL
    topic = harness.unique("bench-rl")
    os.environ["KB_BENCH_TOPIC"] = topic  # the bench app's no-op handler consumes it (read when Django imports tasks)
    import django

    django.setup()
    from kombu.utils.imports import symbol_by_name

    from kafkabridge import runtime

    app = symbol_by_name(runtime.current().settings.celery_app)
    app.loader.import_default_modules()
    print(f"bench.ratelimit: {runs} run(s); {sizes}", file=sys.stderr)
    try:
        if "bucket" in parts:
            samples = [bucket_calls(sizes["calls"]) for _ in range(runs)]
            print(f"\nToken bucket on Redis, calls per second ({sizes['calls']:,} calls a run, median of {runs}):")
            for name in samples[0]:
                values = [sample[name] for sample in samples]
                print(f"  {name:<46} {statistics.median(values):>9,.0f}/s   runs: {', '.join(f'{v:,.0f}' for v in values)}")
            ping = statistics.median(sample["Redis PING (one round trip)"] for sample in samples)
            batch = statistics.median(sample["bucket, batch grant n=500"] for sample in samples)
            print(f"  a batch grant of 500 tokens: {batch * 500:,.0f} tokens/s; n=1 costs "
                  f"{ping / statistics.median(s['bucket, n=1'] for s in samples):.2f} PING round trips")
        if "bridge" in parts:
            harness.fill_topic(topic, sizes["bridge"])
            pairs = [bridge_pair(app, topic, sizes["bridge"], limited_first=bool(i % 2)) for i in range(runs)]
            show_pairs(f"Bridge, Kafka → Celery broker ({sizes['bridge']:,} messages, 3 partitions)", pairs, "messages/s", BRIDGE_TARGET)
        if "worker" in parts:
            for pool in ("solo", "prefork"):
                pairs = [worker_pair(app, pool, sizes["drain"], limited_first=bool(i % 2)) for i in range(runs)]
                show_pairs(f"Handler path, {pool} worker ({sizes['drain']:,} tasks)", pairs, "tasks/s", WORKER_TARGET)
    finally:
        harness.delete_topics()
    return 0


if __name__ == "__main__":
    sys.exit(main())
