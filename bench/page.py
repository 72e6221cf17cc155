"""docs/benchmarks.md is part generated (by ``python -m bench``), part written by hand from other commands.

Kept apart from ``bench.__main__`` so that the test suite can check it without the benchmark's own
requirements (requirements-bench.txt).
"""

from __future__ import annotations

from pathlib import Path

HAND_WRITTEN = "<!-- Written by hand below this line: scripts/bench regenerates what is above it and keeps the rest. -->"
"""The line of docs/benchmarks.md after which sections come from other commands (bench.completion, bench.producer, ...)."""


def written_by_hand(page: Path) -> str:
    """What an earlier benchmarks.md holds from the :data:`HAND_WRITTEN` line on (kept as it is), or nothing."""
    text = page.read_text() if page.exists() else ""
    at = text.find(HAND_WRITTEN)
    return "" if at < 0 else "\n" + text[at:]
