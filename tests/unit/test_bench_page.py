"""scripts/bench regenerates docs/benchmarks.md and keeps the sections written by hand from other commands."""

from __future__ import annotations

from pathlib import Path

from bench.page import HAND_WRITTEN, written_by_hand


def test_the_hand_written_tail_is_kept_from_its_marker_on(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\ngenerated table\n\n{HAND_WRITTEN}\n\n## Producer\n\nby hand\n")
    assert written_by_hand(page) == f"\n{HAND_WRITTEN}\n\n## Producer\n\nby hand\n"


def test_a_page_without_the_marker_or_no_page_keeps_nothing(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    assert written_by_hand(page) == ""
    page.write_text("# Benchmarks\n\ngenerated only\n")
    assert written_by_hand(page) == ""


def test_the_repository_page_has_the_marker() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    assert HAND_WRITTEN in page.read_text()
