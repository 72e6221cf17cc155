"""Writes what a benchmark run measured: JSON for machines, a PNG plot and a Markdown table for people."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .harness import Summary  # noqa: E402


def machine() -> dict[str, Any]:
    import os

    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def write_json(path: Path, results: dict[str, Any]) -> None:
    def encode(value: Any) -> Any:
        if isinstance(value, Summary):
            return {"median": value.median, "min": value.low, "max": value.high, "runs": list(value.runs), "spread": value.spread}
        raise TypeError(type(value))

    path.write_text(json.dumps(results, indent=2, default=encode) + "\n")


def write_plot(path: Path, throughput: dict[str, Summary], memory: list[tuple[int, int]]) -> None:
    figure, (bars, rss) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(throughput)
    medians = [throughput[n].median for n in names]
    errors = [[throughput[n].median - throughput[n].low for n in names], [throughput[n].high - throughput[n].median for n in names]]
    bars.barh(names, medians, xerr=errors, color="#4c72b0", capsize=3)
    bars.set_xscale("log")
    bars.set_xlabel("messages per second (median, min–max; log scale)")
    bars.invert_yaxis()
    bars.set_title("Throughput, same services, same run")
    if memory:
        rss.plot([done for done, _ in memory], [b / 2**20 for _, b in memory], color="#dd8452")
    rss.set_xlabel("messages committed by the bridge")
    rss.set_ylabel("bridge RSS (MiB)")
    rss.set_ylim(bottom=0)
    rss.set_title("Bridge memory over a long run")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: dict[str, Any], command: str, plot_name: str) -> str:
    throughput: dict[str, Summary] = results["throughput"]
    baseline = throughput["B3 raw publish (apply_async)"].median
    rows = [
        f"| {name} | {s.median:,.0f} | {s.low:,.0f}–{s.high:,.0f} ({s.spread:.0%}) | {s.median / baseline:.2f}× |"
        for name, s in throughput.items()
    ]
    ratios = results["ratios"]
    latency = results["latency"]
    memory = results["memory"]
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{command}` (medians of {results['runs']} runs; the spread is (max − min) / median).",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gib']} GiB, Python {results['machine']['python']}, "
        f"{results['machine']['platform']}. Kafka, Redis and the workers all run on this one machine, so absolute numbers "
        "vary between machines and runs; the ratios, measured in the same run, are what to compare.",
        "",
        "| measurement | msg/s (median) | min–max (spread) | × B3 |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "Ratios are taken within each run (the two measurements of a run ran back to back), then the median over runs:",
        "",
        "| ratio | median | per run | target |",
        "|---|---:|---|---|",
        *[
            f"| {label} | **{ratios[key].median:.2f}** | {', '.join(f'{r:.2f}' for r in ratios[key].runs)} | {target} |"
            for key, label, target in (
                ("bridge_vs_b3", "bridge / B3 raw publish", "≥ 5"),
                ("handler_vs_b5_solo", "handler path / B5, solo", "≥ 0.85 (within 15%)"),
                ("handler_vs_b5_prefork", "handler path / B5, prefork", "≥ 0.85 (within 15%)"),
            )
        ],
        "",
        "End-to-end latency, Kafka timestamp → handler start, producing at 50% of the end-to-end capacity measured "
        "just before with the same processes (bridge, worker, Kafka and Redis all busy on this machine); the first "
        f"second is left out as warm-up; medians of {results['runs']} runs per pool, p99 of each run listed. "
        "Target: p99 < 50 ms.",
        "",
        "| worker pool (prefork, threads: 2) | capacity msg/s | load msg/s | samples | p50 ms | p99 ms | p99 per run | of which Kafka → broker p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
        *[
            f"| {row['pool']} | {row['capacity']:,.0f} | {row['rate']:,.0f} | {row['samples']:,.0f} | {row['p50_ms']:.1f} | "
            f"**{row['p99_ms']:.1f}** | {', '.join(f'{p:.0f}' for p in row.get('p99_ms_all', [row['p99_ms']]))} | "
            f"{row['bridge_p50_ms']:.1f} / {row['bridge_p99_ms']:.1f} |"
            for row in latency
        ],
        "",
        f"Bridge memory over {memory['messages']:,} messages: {memory['rss_after_warmup_mib']:.1f} MiB after warm-up "
        f"(first 10%), {memory['rss_max_after_warmup_mib']:.1f} MiB at most afterwards: "
        f"**{memory['growth']:+.1%}** (target: no growth beyond 10%).",
        "",
        f"![throughput and memory]({plot_name})",
        "",
        "What each line measures:",
        "",
        "- **B1 raw consume**: confluent-kafka `consume(1000)` in a loop that only counts.",
        "- **B3 raw publish**: Celery `apply_async` of a no-op task in a loop, one reused producer, results ignored.",
        "- **Bridge**: Kafka → Celery broker through `kafkabridge.Bridge`, offsets committed at least once "
        "(no rate limiter or completion tracking exists yet, so those variants are not measured).",
        "- **B5 raw worker**: a queue of plain no-op Celery tasks drained by a stock `celery worker` (solo, and prefork with 2 processes).",
        "- **Handler path**: the same, with kafkabridge no-op handler tasks (envelope decoding, hooks, retry wrapper, `acks_late`).",
        "- Latency: a bridge process and a worker (each pool in turn); a burst measures the end-to-end capacity, then "
        "the producer sends at half of it for a fixed time.",
        "- Memory: a bridge process over a long run, its RSS sampled each second while the Celery queue is emptied.",
    ]
    return "\n".join(lines) + "\n"
