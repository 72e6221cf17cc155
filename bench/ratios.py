"""Every ratio the report prints: what it divides, its target, and how it is computed from per-run values.

Ratios are taken within each run (their two measurements ran back to back in that run), then the
median over runs: on a shared machine the load drifts between runs, and pairing cancels most of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .harness import Summary

B3 = "B3 raw publish (apply_async)"
BRIDGE = "Bridge (Kafka → Celery broker, at-least-once)"
BRIDGE_COMPLETION = "Bridge, completion tracking (claims in the ledger; nothing finishes)"
B5_SOLO, B5_PREFORK = "B5 raw worker, solo", "B5 raw worker, prefork ×2"
HANDLER_SOLO, HANDLER_PREFORK = "Handler path, solo", "Handler path, prefork ×2"
TRACKED_SOLO, TRACKED_PREFORK = "Handler path, completion tracked, solo", "Handler path, completion tracked, prefork ×2"

PUBLISH, COMPLETION = "publish", "completion"
"""``COMMIT_AFTER`` modes, as the end-to-end rows name them."""

COMPLETION_TARGET = 0.85
"""Issue 7: completion tracking at most 15% lower throughput than commit-after-publish."""


@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    top: str
    bottom: str
    minimum: float
    target: str

    def met(self, value: float) -> bool:
        return value >= self.minimum


THROUGHPUT_RATIOS = (
    Ratio("bridge_vs_b3", "bridge (commit after publish) / B3 raw publish", BRIDGE, B3, 5.0, "≥ 5"),
    Ratio("completion_bridge_vs_bridge", "bridge, completion tracking / bridge, commit after publish (the claims)",
          BRIDGE_COMPLETION, BRIDGE, COMPLETION_TARGET, "≥ 0.85 (≤ 15% lower)"),
    Ratio("handler_vs_b5_solo", "handler path / B5, solo", HANDLER_SOLO, B5_SOLO, 0.85, "≥ 0.85 (within 15%)"),
    Ratio("handler_vs_b5_prefork", "handler path / B5, prefork", HANDLER_PREFORK, B5_PREFORK, 0.85, "≥ 0.85 (within 15%)"),
    Ratio("tracked_vs_handler_solo", "handler path, completion tracked / untracked, solo", TRACKED_SOLO, HANDLER_SOLO,
          COMPLETION_TARGET, "≥ 0.85 (≤ 15% lower)"),
    Ratio("tracked_vs_handler_prefork", "handler path, completion tracked / untracked, prefork", TRACKED_PREFORK,
          HANDLER_PREFORK, COMPLETION_TARGET, "≥ 0.85 (≤ 15% lower)"),
)


def end_to_end_ratio(pool: str) -> Ratio:
    return Ratio(f"end_to_end_completion_vs_publish_{pool}", f"end-to-end capacity, completion / publish, {pool} worker",
                 f"{pool}:{COMPLETION}", f"{pool}:{PUBLISH}", COMPLETION_TARGET, "≥ 0.85 (≤ 15% lower)")


def throughput_ratios(samples: dict[str, list[float]]) -> dict[str, Summary]:
    """The throughput ratios whose two measurements this run has, each per run, then the median."""
    return {
        r.key: Summary.of([a / b for a, b in zip(samples[r.top], samples[r.bottom])])
        for r in THROUGHPUT_RATIOS
        if samples.get(r.top) and samples.get(r.bottom)
    }


def latency_rows(latency: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(pool, mode) → its row; rows of reports older than completion tracking count as commit-after-publish."""
    return {(row["pool"], row.get("mode", PUBLISH)): row for row in latency}


LATENCY_ADDED = (
    ("p50_ms", "to handler start, p50"),
    ("p99_ms", "to handler start, p99"),
    ("commit_p50_ms", "to offset commit, p50"),
    ("commit_p99_ms", "to offset commit, p99"),
)


def end_to_end_pairs(latency: Iterable[dict[str, Any]]) -> dict[str, dict[str, Summary]]:
    """Per pool with both modes: capacity completion / publish, and the latency completion adds (ms), run by run."""
    rows = latency_rows(latency)
    pairs = {}
    for pool in dict.fromkeys(pool for pool, _ in rows):
        if (pool, PUBLISH) not in rows or (pool, COMPLETION) not in rows:
            continue
        runs = list(zip(rows[(pool, PUBLISH)]["runs"], rows[(pool, COMPLETION)]["runs"]))
        paired = {"capacity_ratio": Summary.of([c["capacity"] / p["capacity"] for p, c in runs])}
        for field, _ in LATENCY_ADDED:
            if all(field in p and field in c for p, c in runs):
                paired[f"{field}_added"] = Summary.of([c[field] - p[field] for p, c in runs])
        pairs[pool] = paired
    return pairs


def all_ratios(samples: dict[str, list[float]], latency: Iterable[dict[str, Any]]) -> dict[str, Summary]:
    """Every ratio of the report's table: throughput ratios, then end-to-end capacity ratios per pool."""
    ratios = throughput_ratios(samples)
    for pool, paired in end_to_end_pairs(latency).items():
        ratios[end_to_end_ratio(pool).key] = paired["capacity_ratio"]
    return ratios


def definitions(keys: Iterable[str]) -> list[Ratio]:
    """The definition of each ratio key present, in report order."""
    known = {r.key: r for r in THROUGHPUT_RATIOS}
    found = []
    for key in keys:
        if key in known:
            found.append(known[key])
        elif key.startswith("end_to_end_completion_vs_publish_"):
            found.append(end_to_end_ratio(key.removeprefix("end_to_end_completion_vs_publish_")))
    order = [r.key for r in THROUGHPUT_RATIOS]
    return sorted(found, key=lambda r: order.index(r.key) if r.key in order else len(order))
