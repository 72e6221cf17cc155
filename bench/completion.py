"""``python -m bench.completion`` (``scripts/bench --completion``): completion tracking vs commit-after-publish.

Only the measurements issue 7's throughput target is about, each pair in the same run (the order flips
every other run), printed as per-run ratios and their median:

- the bridge, Kafka → Celery broker, committing after publish vs claiming each batch in the ledger;
- the handler path drained by a solo and a prefork worker, untracked vs completion tracked;
- end to end (bridge and prefork worker together), capacity and latency in both modes;
- the ledger calls themselves: a worker's ``begin`` + batched outcome vs the former ``begin`` +
  synchronous ``finish``, and a batch claimed as one range vs offset by offset (what a re-dispatch,
  and every claim before ranges, costs);
- what the attempt history adds to a retry's Celery message, in bytes and as a ratio.

Runs on the services ``KAFKA_BOOTSTRAP_SERVERS`` and ``KB_BENCH_BROKER_URL`` name (default: the local
ones); nothing is written to docs/ (the numbers go into docs/benchmarks.md by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from . import harness

PAIRS = ("bridge", "handler solo", "handler prefork", "end to end prefork")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.completion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    options = parser.parse_args(argv)
    try:
        return measure(options.runs, options.quick)
    finally:
        harness.delete_topics()


def measure(runs: int, quick: bool) -> int:
    sizes = {"bridge": 30_000 if quick else 100_000, "drain": 2_000 if quick else 5_000, "burst": 1_000 if quick else 2_000,
             "latency_seconds": 6 if quick else 15, "ledger_calls": 2_000, "claim_batch": 500}
    topic = harness.unique("bench")
    os.environ["KB_BENCH_TOPIC"] = topic
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["CELERY_BROKER_URL"] = harness.BROKER_URL
    import django

    django.setup()
    from kombu.utils.imports import symbol_by_name

    from kafkabridge import runtime

    from . import scenarios

    app = symbol_by_name(runtime.current().settings.celery_app)
    app.loader.import_default_modules()
    harness.fill_topic(topic, sizes["bridge"])
    load_at_start = os.getloadavg()[0]

    claimed: list[dict] = []
    pairs: dict[str, tuple[Callable[[], float], Callable[[], float]]] = {
        "bridge": (lambda: scenarios.bridge_throughput(app, topic, sizes["bridge"], commit_after="publish"),
                   lambda: scenarios.bridge_throughput(app, topic, sizes["bridge"], commit_after="completion", details=claimed)),
        "handler solo": (lambda: scenarios.worker_drain(app, "bench.noop_handler", "solo", sizes["drain"]),
                         lambda: scenarios.worker_drain(app, "bench.noop_handler", "solo", sizes["drain"], tracked=True)),
        "handler prefork": (lambda: scenarios.worker_drain(app, "bench.noop_handler", "prefork", sizes["drain"]),
                            lambda: scenarios.worker_drain(app, "bench.noop_handler", "prefork", sizes["drain"], tracked=True)),
    }
    ratios: dict[str, list[float]] = {name: [] for name in PAIRS}
    latency: list[tuple[dict, dict]] = []
    for run in range(runs):
        flip = run % 2 == 1
        for name, (publish, completion) in pairs.items():
            first, second = (completion, publish) if flip else (publish, completion)
            a, b = first(), second()
            untracked, tracked = (b, a) if flip else (a, b)
            ratios[name].append(tracked / untracked)
            print(f"run {run + 1}: {name}: publish {untracked:,.0f} msg/s, completion {tracked:,.0f} msg/s, "
                  f"ratio {tracked / untracked:.2f}", file=sys.stderr)
        modes = ("completion", "publish") if flip else ("publish", "completion")
        rate = None
        results = {}
        for mode in modes:
            results[mode] = scenarios.end_to_end(sizes["burst"], sizes["latency_seconds"], pool="prefork", commit_after=mode, rate=rate)
            rate = results[mode]["rate"]
        ratios["end to end prefork"].append(results["completion"]["capacity"] / results["publish"]["capacity"])
        latency.append((results["publish"], results["completion"]))
        print(f"run {run + 1}: end to end prefork: capacity publish {results['publish']['capacity']:,.0f}, completion "
              f"{results['completion']['capacity']:,.0f} msg/s; handler start p50/p99 publish "
              f"{results['publish']['p50_ms']:.1f}/{results['publish']['p99_ms']:.1f} ms, completion "
              f"{results['completion']['p50_ms']:.1f}/{results['completion']['p99_ms']:.1f} ms", file=sys.stderr)

    worker_calls = [ledger_calls(sizes["ledger_calls"]) for _ in range(runs)]
    claims = [claim_costs(sizes["claim_batch"]) for _ in range(runs)]
    history = history_cost()

    print(f"\nCompletion tracking vs commit-after-publish: medians of {runs} paired runs (per run in brackets); "
          f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} CPUs")
    for name in PAIRS:
        values = ratios[name]
        print(f"  {name:<22} completion / publish {statistics.median(values):.2f}  "
              f"({', '.join(f'{v:.2f}' for v in values)})  target >= 0.85")
    added = [(c["p50_ms"] - p["p50_ms"], c["p99_ms"] - p["p99_ms"]) for p, c in latency]
    print(f"  end-to-end latency added (handler start, prefork): p50 {statistics.median(a for a, _ in added):+.1f} ms, "
          f"p99 {statistics.median(b for _, b in added):+.1f} ms (per run {', '.join(f'{a:+.1f}/{b:+.1f}' for a, b in added)})")
    _compared("worker ledger cost per message", worker_calls, ("begin carrying the previous outcome", "begin_batched_us"),
              ("begin + synchronous finish", "begin_finish_us"), "µs")
    shares = [run["claim_seconds"] / run["seconds"] for run in claimed if run["seconds"]]
    if shares:
        print(f"  bridge time spent in claims (completion mode): {statistics.median(shares):.1%} "
              f"({', '.join(f'{share:.1%}' for share in shares)})")
    _compared(f"bridge claim of a {sizes['claim_batch']}-message batch on 3 partitions", claims, ("as ranges", "range_ms"),
              ("offset by offset", "each_ms"), "ms")
    for attempts, (plain, with_history) in history.items():
        print(f"  retry message after {attempts} failed attempt(s): {plain:,} bytes without history, {with_history:,} with "
              f"(+{with_history - plain:,} bytes, ratio {with_history / plain:.2f})")
    return 0


def _compared(what: str, runs: list[dict[str, float]], new: tuple[str, str], old: tuple[str, str], unit: str) -> None:
    """Prints the medians of two per-run figures and their ratio (new / old)."""
    values = [statistics.median(run[key] for run in runs) for _, key in (new, old)]
    print(f"  {what}: {new[0]} {values[0]:.2f} {unit}, {old[0]} {values[1]:.2f} {unit}: ratio {values[0] / values[1]:.2f}")


def ledger_calls(count: int) -> dict[str, float]:
    """µs per message of a worker's ledger work: outcomes carried by the next ``begin`` (today), and a
    synchronous ``finish`` after every ``begin`` (before), both from one client on one partition."""
    from . import scenarios

    return {"begin_batched_us": scenarios.ledger_round_trips(count),
            "begin_finish_us": scenarios.ledger_round_trips(count, batched=False)}


def claim_costs(batch: int, repeats: int = 20) -> dict[str, float]:
    """ms per claim of a fresh batch of ``batch`` offsets on each of 3 partitions: as one range per
    partition, and offset by offset (``again``: each offset's lease is looked at, as every claim did
    before ranges; a re-dispatch still does)."""
    from kafkabridge.completion import ledger_for
    from kafkabridge.consumer.completion import new_token

    group = harness.unique("claims")
    ledger = ledger_for(group, url=None, broker_url=harness.BROKER_URL)
    try:
        timings = {}
        for name, again in (("range_ms", False), ("each_ms", True)):
            started = time.perf_counter()
            for repeat in range(repeats):
                offsets = range(repeat * batch, (repeat + 1) * batch)
                ledger.claim({("bench.claims", p): offsets for p in range(3)}, new_token(), again=again)
            timings[name] = (time.perf_counter() - started) / repeats * 1000
        return timings
    finally:
        harness.delete_ledger(group)


def history_cost(message_chars: int = 120) -> dict[int, tuple[int, int]]:
    """Bytes of a retry's Celery message body (args and kwargs as JSON) without and with the attempt
    history, after 1, 5 and 25 failed attempts (25: the bound), each with a ``message_chars`` exception message."""
    from kafkabridge.dead_letter.record import Attempt, with_attempt
    from kafkabridge.message import Message
    from kafkabridge.wire import Delivery, encode_envelope

    envelope = encode_envelope(Message(topic="orders", partition=2, offset=123_456, key=b"order-42",
                                       value=json.dumps({"id": 42, "lines": [{"sku": "A-1", "qty": 2}]}).encode()))
    base = Delivery(group="orders-service", token="0123456789ab")
    sizes = {}
    for attempts in (1, 5, 25, 100):
        history: tuple[Attempt, ...] = ()
        for number in range(1, attempts + 1):
            history = with_attempt(history, Attempt(
                number=number, started_at=time.time(), seconds=0.123, host="celery@worker-7.example.internal",
                exception_class="requests.exceptions.ConnectionError", exception_message="x" * message_chars))
        failed = base.failed(datetime.now(timezone.utc))
        plain = len(json.dumps([[envelope], failed.to_kwargs()]))
        with_history = len(json.dumps([[envelope], replace(failed, history=history).to_kwargs()]))
        sizes[attempts] = (plain, with_history)
    return sizes


if __name__ == "__main__":
    sys.exit(main())
