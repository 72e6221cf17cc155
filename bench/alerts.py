"""What alerts cost a worker when Discord is slow (issue 9, item 2): printed, not a timed test.

    .venv/bin/python -m bench.alerts            # 3 pairs of 2,000 tasks
    .venv/bin/python -m bench.alerts --quick    # 2 pairs of 1,000

A stock prefork ``celery worker`` (2 processes, ``tests.settings``) drains a full queue of a handler
that gives up on every message, so every task is a dead letter (a row in PostgreSQL) and an alert
event: the worst case for alerting. Alerts off vs alerts on with the webhook a local fake Discord
that answers every request after 5 s (``tests/alerts/fake_discord.py``), window and update interval
1 s so the sender is busy in a slow request for the whole drain. Each pair is measured back to back,
its order alternating between runs; the ratio is taken per run, then the median (target ≥ 0.95).

So that "alerts on" measures the alert path and not a silently broken one, each "on" run then waits (up
to 30 s, after the clock stopped) until the Redis groups count every dead letter, and prints how many they
hold; the dropped events are read from the worker's own report ("dropped N alert event(s)"), not guessed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

TARGET = 0.95
BROKER_URL = "redis://127.0.0.1:6379/6"
"""The Celery broker of this benchmark (KB_BENCH_BROKER_URL wins)."""
SLOW_SECONDS = 5.0


def drain(app: object, count: int, webhook_url: str | None) -> tuple[float, str, int]:
    """Tasks per second of a full queue of dead-lettering tasks drained by a prefork worker; its log; and how many
    alert events the Redis groups counted (0 with alerts off)."""
    from kafkabridge.contrib.django.models import FailedMessage

    from . import harness, scenarios

    ns, idle = harness.unique("kbal").replace("-", ""), harness.unique("idle")
    broker = harness.broker()
    alerts = {"KAFKABRIDGE_ALERTS_WEBHOOK_URL": webhook_url, "KBTEST_ALERTS_WINDOW": "1", "KBTEST_ALERTS_UPDATE_INTERVAL": "1"} if webhook_url else {}
    FailedMessage.objects.filter(source_topic="bench.fill").delete()
    worker = harness.start_worker("prefork", idle, DJANGO_SETTINGS_MODULE="tests.settings", KBTEST_NS=ns, **alerts)
    try:
        scenarios._fill_queue(app, ns, "tests.app.tasks.gives_up", count)  # published as the bridge publishes them
        started = time.perf_counter()
        app.control.add_consumer(ns, destination=[f"{worker.name}@{os.uname().nodename}"], reply=True, timeout=10)  # type: ignore[attr-defined]
        harness.wait_until(lambda: FailedMessage.objects.filter(source_topic="bench.fill").count() >= count, 600,
                           f"{count} dead letters", interval=0.05)
        rate = count / (time.perf_counter() - started)
        recorded = 0
        if webhook_url:  # after the clock: did the alert path see every dead letter?
            deadline = time.monotonic() + 30
            while (recorded := recorded_events(ns)) < count and time.monotonic() < deadline:
                time.sleep(0.2)
        return rate, worker.log_path.read_text(errors="replace"), recorded
    finally:
        worker.stop()
        broker.delete(ns)
        FailedMessage.objects.filter(source_topic="bench.fill").delete()
        forget_groups(ns)


def _alerts_redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(os.environ.get("KBTEST_REDIS_URL", "redis://127.0.0.1:6379/2"))


def recorded_events(ns: str) -> int:
    """Events the run's alert groups counted (tests.settings groups under ``{ns}:alerts``)."""
    client = _alerts_redis()
    return sum(int(client.hget(key, "count") or 0) for key in client.scan_iter(f"{ns}:alerts:g:*", count=1000))


def forget_groups(ns: str) -> None:
    """Every key of the run's namespace in the tests' Redis: alert groups and members, the test handler's attempts."""
    client = _alerts_redis()
    keys = list(client.scan_iter(f"{ns}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])


def dropped_events(log: str) -> int:
    """The worker's own count: each process logs "dropped N alert event(s) in this process so far"."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        found = re.search(r"dropped (\d+) alert event", line)
        if found:
            named = re.search(r"/([^\]/]+)\]", line)  # Celery's prefix: [time: LEVEL/ProcessName]
            process = named.group(1) if named else ""
            counts[process] = max(counts.get(process, 0), int(found.group(1)))
    return sum(counts.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 pairs of 1,000 tasks")
    parser.add_argument("--runs", type=int, default=None)
    options = parser.parse_args(argv)
    runs, count = options.runs or (2 if options.quick else 3), 1_000 if options.quick else 2_000

    # a Redis database of its own: other benchmarks empty theirs (db 3) while they run
    os.environ.setdefault("KB_BENCH_BROKER_URL", BROKER_URL)
    from . import harness

    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["CELERY_BROKER_URL"] = harness.BROKER_URL
    import django

    django.setup()
    from kombu.utils.imports import symbol_by_name

    from kafkabridge import runtime
    from tests.alerts.fake_discord import FakeDiscord

    app = symbol_by_name(runtime.current().settings.celery_app)
    app.loader.import_default_modules()
    pairs = []
    with FakeDiscord(delay=SLOW_SECONDS) as fake:
        for run in range(runs):
            order = (None, fake.url) if run % 2 == 0 else (fake.url, None)
            result = {("on" if url else "off"): drain(app, count, url) for url in order}
            pairs.append(result)
            requests = len(fake.requests)
            print(f"  run {run + 1}: off {result['off'][0]:,.0f}/s, on {result['on'][0]:,.0f}/s, alert events counted in Redis "
                  f"{result['on'][2]:,} of {count:,} ({requests} webhook requests so far, each answered after {SLOW_SECONDS:.0f}s)",
                  file=sys.stderr)
        leaked = [pair["on"][1] for pair in pairs if fake.token in pair["on"][1]]
        dropped = sum(dropped_events(pair["on"][1]) for pair in pairs)
        recorded = [pair["on"][2] for pair in pairs]
        titles = [r.payload["embeds"][0]["title"] for r in fake.requests if r.payload and r.status == 200]
    ratios = [pair["on"][0] / pair["off"][0] for pair in pairs]
    median = statistics.median(ratios)
    print(f"\nHandler path, prefork worker (2 processes), {count:,} tasks each a dead letter and an alert event; "
          f"Discord answering after {SLOW_SECONDS:.0f}s")
    print(f"  {'run':<5} {'alerts off':>12} {'alerts on':>12} {'ratio':>7}")
    for index, (pair, ratio) in enumerate(zip(pairs, ratios), 1):
        print(f"  {index:<5} {pair['off'][0]:>12,.0f} {pair['on'][0]:>12,.0f} {ratio:>7.3f}")
    print(f"  median {statistics.median(p['off'][0] for p in pairs):>11,.0f} {statistics.median(p['on'][0] for p in pairs):>12,.0f} "
          f"{median:>7.3f}   (tasks/s; ratio = on / off; target ≥ {TARGET:.2f}: {'met' if median >= TARGET else 'NOT met'})")
    print(f"  webhook requests answered: {len(titles)} (e.g. {titles[-1] if titles else '-'}); "
          f"alert events dropped (the workers' own count): {dropped}; logs showing the webhook token: {len(leaked)}")
    honest = all(r + dropped >= count for r in recorded)
    print(f"  alert events counted in the Redis groups per 'on' run: {', '.join(f'{r:,}' for r in recorded)} of {count:,} "
          f"({'every dead letter went through the alert path' if honest else 'NOT every dead letter reached the alert path: the ratio does not measure it'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
