"""``python -m bench``: every benchmark of issue 3 in one command; JSON, a plot and docs/benchmarks.md out.

    scripts/bench            # full: medians of 3 runs, a 1,000,000-message memory run
    scripts/bench --quick    # a smaller, faster pass of the same measurements

Completion tracking (issue 7) is measured against commit-after-publish at each place it costs: the
bridge's claims, the worker's ledger calls, and end to end (capacity and latency), each pair in the
same run. Every ratio is printed with its target, and compared with docs/benchmarks.json's when
that has it (issue 6: the bridge / raw publish ratio within 10%).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from tqdm import tqdm

from . import harness, ratios

DOCS = harness.ROOT / "docs"
T = TypeVar("T")
MAX_IN_FLIGHT = 1000
"""In flight per partition for the ledger-check measurement: the default bound (``MAX_IN_FLIGHT``)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a fast check")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default 3, quick 2)")
    parser.add_argument("--out", type=Path, default=DOCS, help="where benchmarks.{json,png,md} go")
    parser.add_argument("--from-json", type=Path, help="rewrite the report from a saved benchmarks.json; measure nothing")
    parser.add_argument("--completion", action="store_true",
                        help="only completion tracking vs commit-after-publish, ratios printed (bench/completion.py)")
    options = parser.parse_args(argv)
    if options.completion:
        from . import completion

        return completion.main([*(["--quick"] if options.quick else []), "--runs", str(options.runs or 3)])
    if options.from_json:
        return rewrite_report(options.from_json, options.out)
    try:
        return measure(options)
    finally:
        harness.delete_topics()


def measure(options: argparse.Namespace) -> int:
    runs = options.runs or (2 if options.quick else 3)
    sizes = {
        "consume": 100_000 if options.quick else 300_000,
        "publish": 3_000 if options.quick else 10_000,
        "bridge": 50_000 if options.quick else 150_000,
        "drain": 3_000 if options.quick else 10_000,
        "latency_seconds": 6 if options.quick else 20,
        "burst": 1_000 if options.quick else 3_000,
        "memory": 200_000 if options.quick else 1_000_000,
        "ledger_calls": 2_000,
    }
    reference = _reference_ratios()

    topic = harness.unique("bench")
    os.environ["KB_BENCH_TOPIC"] = topic  # the no-op handler's topic, read when Django imports the tasks
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["CELERY_BROKER_URL"] = harness.BROKER_URL
    import django

    django.setup()
    from kafkabridge import runtime
    from kombu.utils.imports import symbol_by_name

    from . import report, scenarios

    app = symbol_by_name(runtime.current().settings.celery_app)
    app.loader.import_default_modules()
    harness.broker().flushdb()
    code = report.code_version()  # at the start: what the processes started from here will import
    load_at_start = os.getloadavg()[0]

    print(f"filling {topic} with {max(sizes['consume'], sizes['bridge']):,} messages", file=sys.stderr)
    harness.fill_topic(topic, max(sizes["consume"], sizes["bridge"]))

    claims: list[dict] = []
    retried: list[str] = []
    measurements = {
        "B1 raw consume (consume(1000))": lambda: scenarios.raw_consume(topic, sizes["consume"]),
        ratios.B3: lambda: scenarios.raw_publish(app, sizes["publish"]),
        ratios.BRIDGE: lambda: scenarios.bridge_throughput(app, topic, sizes["bridge"], commit_after=ratios.PUBLISH),
        ratios.BRIDGE_COMPLETION: lambda: scenarios.bridge_throughput(
            app, topic, sizes["bridge"], commit_after=ratios.COMPLETION, details=claims),
        ratios.B5_SOLO: lambda: scenarios.worker_drain(app, "bench.noop", "solo", sizes["drain"]),
        ratios.HANDLER_SOLO: lambda: scenarios.worker_drain(app, "bench.noop_handler", "solo", sizes["drain"]),
        ratios.TRACKED_SOLO: lambda: scenarios.worker_drain(app, "bench.noop_handler", "solo", sizes["drain"], tracked=True),
        ratios.B5_PREFORK: lambda: scenarios.worker_drain(app, "bench.noop", "prefork", sizes["drain"]),
        ratios.HANDLER_PREFORK: lambda: scenarios.worker_drain(app, "bench.noop_handler", "prefork", sizes["drain"]),
        ratios.TRACKED_PREFORK: lambda: scenarios.worker_drain(app, "bench.noop_handler", "prefork", sizes["drain"], tracked=True),
    }
    samples: dict[str, list[float]] = {name: [] for name in measurements}
    ledger_us: list[float] = []
    check_ms: list[float] = []
    with tqdm(total=runs * len(measurements), desc="benchmarks", unit="step") as progress:
        for run in range(runs):  # interleaved, so a noisy minute hurts every measurement alike
            for name in _run_order(list(measurements), run):
                progress.set_postfix_str(name)
                samples[name].append(_retrying(measurements[name], f"run {run + 1}: {name}", retried))
                progress.write(f"run {run + 1}: {name}: {samples[name][-1]:,.0f} msg/s")
                progress.update()
            ledger_us.append(_retrying(lambda: scenarios.ledger_round_trips(sizes["ledger_calls"]), f"run {run + 1}: ledger calls", retried))
            progress.write(f"run {run + 1}: ledger begin, carrying the previous outcome, from one client: {ledger_us[-1]:.0f} µs per message")
            check_ms.append(_retrying(lambda: scenarios.ledger_check(MAX_IN_FLIGHT), f"run {run + 1}: ledger check", retried))
            progress.write(f"run {run + 1}: ledger check, {MAX_IN_FLIGHT:,} in flight on each of {harness.PARTITIONS} "
                           f"partitions: {check_ms[-1]:.1f} ms")
    throughput = {name: harness.Summary.of(values) for name, values in samples.items()}

    tries: dict[tuple[str, str], list[dict]] = {}
    for run in range(runs):  # every pool in both modes per run, the two modes back to back (alternating which first)
        for pool in ("threads", "solo", "prefork"):
            modes = (ratios.PUBLISH, ratios.COMPLETION) if run % 2 == 0 else (ratios.COMPLETION, ratios.PUBLISH)
            rate = None  # the second mode is loaded at the first one's rate: latency compared at the same load
            for mode in modes:
                result = _retrying(
                    lambda: scenarios.end_to_end(sizes["burst"], sizes["latency_seconds"], pool=pool, commit_after=mode, rate=rate),
                    f"run {run + 1}: end to end, {pool}, {mode}", retried,
                )
                rate = result["rate"]
                tries.setdefault((pool, mode), []).append(result)
                print(f"run {run + 1}: end to end, {pool} worker, commit after {mode}: capacity {result['capacity']:,.0f} msg/s, "
                      f"handler start p50/p99 {result['p50_ms']:.1f}/{result['p99_ms']:.1f} ms, "
                      f"commit p50/p99 {result['commit_p50_ms']:.0f}/{result['commit_p99_ms']:.0f} ms", file=sys.stderr)
    latency = []
    for pool in ("threads", "solo", "prefork"):
        for mode in (ratios.PUBLISH, ratios.COMPLETION):
            runs_of = tries[(pool, mode)]
            row: dict = {"pool": pool, "mode": mode, "runs": runs_of}
            for field in ("capacity", "rate", "samples", "p50_ms", "p99_ms", "bridge_p50_ms", "bridge_p99_ms",
                          "commit_p50_ms", "commit_p99_ms"):
                row[field] = harness.Summary.of([t[field] for t in runs_of]).median
            row["p99_ms_all"] = [t["p99_ms"] for t in runs_of]
            latency.append(row)

    memory_topic = harness.unique("bench-rss")
    harness.fill_topic(memory_topic, sizes["memory"])
    memory = _retrying(lambda: scenarios.bridge_memory(memory_topic, sizes["memory"]), "bridge memory", retried)
    warm = [rss for done, rss in memory if done >= sizes["memory"] * 0.1]
    after_warmup = warm[0] if warm else memory[-1][1]
    peak = max(warm) if warm else after_warmup

    results = {
        "runs": runs,
        "sizes": sizes,
        "machine": report.machine(),
        "code": code,
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "throughput": throughput,
        "ratios": ratios.all_ratios(samples, latency),
        "latency": latency,
        "end_to_end": ratios.end_to_end_pairs(latency),
        "completion_costs": {
            "bridge_runs": claims,
            "ledger_us_per_message": harness.Summary.of(ledger_us),
            "check_ms_at_bound": harness.Summary.of(check_ms),
            "bound": MAX_IN_FLIGHT,
            "commit_interval": runtime.current().settings.commit_interval,
        },
        "retried": retried,
        "memory": {
            "messages": sizes["memory"],
            "rss_after_warmup_mib": after_warmup / 2**20,
            "rss_max_after_warmup_mib": peak / 2**20,
            "growth": peak / after_warmup - 1,
            "samples": memory,
        },
    }
    write_outputs(results, options.out, "scripts/bench" + (" --quick" if options.quick else ""))
    closing_note(results, reference)
    return 0


REDIS_SETTLE_SECONDS = 15.0
"""After Redis came back, how long to wait before measuring again (a fault test may restart it twice in a row)."""


def _retrying(measure: Callable[[], T], what: str, retried: list[str], attempts: int = 5) -> T:
    """Run ``measure``; measure again if Redis went away under it (others' tests restart the shared services).

    A measurement that lost its broker measured nothing; it is not averaged in, it is taken again, and
    the report lists it.
    """
    import redis

    for attempt in range(1, attempts + 1):
        try:
            return measure()
        except redis.exceptions.ConnectionError as error:
            if attempt == attempts:
                raise
            retried.append(f"{what}: {error}")
            print(f"{what}: Redis went away ({error}); waiting for it and measuring again", file=sys.stderr)
            harness.wait_until(_redis_up, 300, "Redis to come back", interval=1.0)
            time.sleep(REDIS_SETTLE_SECONDS)
    raise AssertionError("unreachable")


def _redis_up() -> bool:
    import redis

    try:
        return bool(harness.broker().ping())
    except redis.exceptions.ConnectionError:
        return False


ALTERNATED = ((ratios.BRIDGE, ratios.BRIDGE_COMPLETION), (ratios.HANDLER_SOLO, ratios.TRACKED_SOLO),
              (ratios.HANDLER_PREFORK, ratios.TRACKED_PREFORK))
"""Pairs whose order flips every other run, so that neither side always runs first (warm caches, drift)."""


def _run_order(names: list[str], run: int) -> list[str]:
    if run % 2 == 0:
        return names
    order = list(names)
    for first, second in ALTERNATED:
        i, j = order.index(first), order.index(second)
        order[i], order[j] = order[j], order[i]
    return order


def _reference_ratios() -> dict[str, float]:
    """The ratios of the last full report (docs/benchmarks.json), read before this run may overwrite it."""
    import json

    try:
        saved = json.loads((DOCS / "benchmarks.json").read_text())
    except (OSError, ValueError):
        return {}
    return {key: value["median"] for key, value in saved.get("ratios", {}).items()}


def closing_note(results: dict, reference: dict[str, float]) -> None:
    """Each ratio against its target, and against the last full report where that had it."""
    lines = ["", "closing note: ratios (median of runs; per run) against their targets"]
    for r in ratios.definitions(results["ratios"]):
        value = results["ratios"][r.key]
        line = (f"  {r.label}: {value.median:.2f} ({', '.join(f'{v:.2f}' for v in value.runs)}); target {r.target}: "
                f"{'met' if r.met(value.median) else 'NOT MET'}")
        if r.key in reference:
            change = value.median / reference[r.key] - 1
            line += f"; docs/benchmarks.md had {reference[r.key]:.2f} ({change:+.1%}, {'within' if abs(change) <= 0.10 else 'NOT within'} 10%)"
        lines.append(line)
    for pool, paired in results["end_to_end"].items():
        added = ", ".join(f"{label} {paired[f'{field}_added'].median:+.1f} ms" for field, label in ratios.LATENCY_ADDED
                          if f"{field}_added" in paired)
        lines.append(f"  end to end, {pool} worker: completion tracking adds {added}")
    print("\n".join(lines), file=sys.stderr)


def rewrite_report(saved: Path, out: Path) -> int:
    import json

    results = json.loads(saved.read_text())
    samples = {name: summary["runs"] for name, summary in results["throughput"].items()}
    results["throughput"] = {name: harness.Summary.of(runs) for name, runs in samples.items()}
    results["ratios"] = ratios.all_ratios(samples, results["latency"])
    results["end_to_end"] = ratios.end_to_end_pairs(results["latency"])
    write_outputs(results, out, results.get("command", "scripts/bench"))
    closing_note(results, {})
    return 0


def write_outputs(results: dict, out: Path, command: str) -> None:
    from . import report
    from .page import written_by_hand

    results["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "benchmarks.json", results)
    report.write_plot(out / "benchmarks.png", results["throughput"], [tuple(s) for s in results["memory"]["samples"]])
    page = out / "benchmarks.md"
    by_hand = written_by_hand(page)
    page.write_text(report.markdown(results, command, "benchmarks.png") + by_hand)
    print(page.read_text())



if __name__ == "__main__":
    sys.exit(main())
