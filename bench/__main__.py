"""``python -m bench``: every benchmark of issue 3 in one command; JSON, a plot and docs/benchmarks.md out.

    scripts/bench            # full: medians of 3 runs, a 1,000,000-message memory run
    scripts/bench --quick    # a smaller, faster pass of the same measurements
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from . import harness

DOCS = harness.ROOT / "docs"


RATIOS = {
    "bridge_vs_b3": ("Bridge (Kafka → Celery broker, at-least-once)", "B3 raw publish (apply_async)"),
    "handler_vs_b5_solo": ("Handler path, solo", "B5 raw worker, solo"),
    "handler_vs_b5_prefork": ("Handler path, prefork ×2", "B5 raw worker, prefork ×2"),
}


def paired_ratios(samples: dict[str, list[float]]) -> dict[str, harness.Summary]:
    """Each ratio per run (its two measurements ran minutes apart at most), then the median over runs.

    On a shared machine the load drifts between runs; pairing within a run cancels most of that drift.
    """
    return {
        name: harness.Summary.of([a / b for a, b in zip(samples[top], samples[bottom])])
        for name, (top, bottom) in RATIOS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a fast check")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default 3, quick 2)")
    parser.add_argument("--out", type=Path, default=DOCS, help="where benchmarks.{json,png,md} go")
    parser.add_argument("--from-json", type=Path, help="rewrite the report from a saved benchmarks.json; measure nothing")
    options = parser.parse_args(argv)
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
    }

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

    print(f"filling {topic} with {max(sizes['consume'], sizes['bridge']):,} messages", file=sys.stderr)
    harness.fill_topic(topic, max(sizes["consume"], sizes["bridge"]))

    measurements = {
        "B1 raw consume (consume(1000))": lambda: scenarios.raw_consume(topic, sizes["consume"]),
        "B3 raw publish (apply_async)": lambda: scenarios.raw_publish(app, sizes["publish"]),
        "Bridge (Kafka → Celery broker, at-least-once)": lambda: scenarios.bridge_throughput(app, topic, sizes["bridge"]),
        "B5 raw worker, solo": lambda: scenarios.worker_drain(app, "bench.noop", "solo", sizes["drain"]),
        "Handler path, solo": lambda: scenarios.worker_drain(app, "bench.noop_handler", "solo", sizes["drain"]),
        "B5 raw worker, prefork ×2": lambda: scenarios.worker_drain(app, "bench.noop", "prefork", sizes["drain"]),
        "Handler path, prefork ×2": lambda: scenarios.worker_drain(app, "bench.noop_handler", "prefork", sizes["drain"]),
    }
    samples: dict[str, list[float]] = {name: [] for name in measurements}
    with tqdm(total=runs * len(measurements), desc="benchmarks", unit="step") as progress:
        for run in range(runs):  # interleaved, so a noisy minute hurts every measurement alike
            for name, measure in measurements.items():
                progress.set_postfix_str(name)
                samples[name].append(measure())
                progress.write(f"run {run + 1}: {name}: {samples[name][-1]:,.0f} msg/s")
                progress.update()
    throughput = {name: harness.Summary.of(values) for name, values in samples.items()}

    latency = []
    for pool in ("threads", "solo", "prefork"):
        tries = [scenarios.end_to_end(sizes["burst"], sizes["latency_seconds"], pool=pool) for _ in range(runs)]
        summary = {"pool": pool, "runs": tries}
        for field in ("capacity", "rate", "samples", "p50_ms", "p99_ms", "bridge_p50_ms", "bridge_p99_ms"):
            summary[field] = harness.Summary.of([t[field] for t in tries]).median
        summary["p99_ms_all"] = [t["p99_ms"] for t in tries]
        latency.append(summary)
        print(f"end to end, {pool} worker: p99 per run {', '.join(f'{p:.1f}' for p in summary['p99_ms_all'])} ms", file=sys.stderr)

    memory_topic = harness.unique("bench-rss")
    harness.fill_topic(memory_topic, sizes["memory"])
    memory = scenarios.bridge_memory(memory_topic, sizes["memory"])
    warm = [rss for done, rss in memory if done >= sizes["memory"] * 0.1]
    after_warmup = warm[0] if warm else memory[-1][1]
    peak = max(warm) if warm else after_warmup

    results = {
        "runs": runs,
        "sizes": sizes,
        "machine": report.machine(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "throughput": throughput,
        "ratios": paired_ratios(samples),
        "latency": latency,
        "memory": {
            "messages": sizes["memory"],
            "rss_after_warmup_mib": after_warmup / 2**20,
            "rss_max_after_warmup_mib": peak / 2**20,
            "growth": peak / after_warmup - 1,
            "samples": memory,
        },
    }
    write_outputs(results, options.out, "scripts/bench" + (" --quick" if options.quick else ""))
    return 0


def rewrite_report(saved: Path, out: Path) -> int:
    import json

    from . import report

    results = json.loads(saved.read_text())
    samples = {name: summary["runs"] for name, summary in results["throughput"].items()}
    results["throughput"] = {name: harness.Summary.of(runs) for name, runs in samples.items()}
    results["ratios"] = paired_ratios(samples)
    write_outputs(results, out, results.get("command", "scripts/bench"))
    return 0


def write_outputs(results: dict, out: Path, command: str) -> None:
    from . import report

    results["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "benchmarks.json", results)
    report.write_plot(out / "benchmarks.png", results["throughput"], [tuple(s) for s in results["memory"]["samples"]])
    (out / "benchmarks.md").write_text(report.markdown(results, command, "benchmarks.png"))
    print((out / "benchmarks.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
