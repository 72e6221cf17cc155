"""The checker itself: it must see every broken promise it is there to catch (pure, no services)."""

from __future__ import annotations

from tests.fault.checker import Ack, Event, judge

T0 = 1000.0


def acked(*positions: tuple[int, int]) -> dict[str, Ack]:
    return {f"m{i:06d}": Ack(partition, offset, T0) for i, (partition, offset) in enumerate(positions)}


def run(message_id: str, attempt: int, at: float, outcome: str | None = "ok", pid: int = 1) -> list[Event]:
    partition, offset = 0, int(message_id[1:])
    events = [Event("start", message_id, partition, offset, attempt, pid, at, {})]
    if outcome:
        events.append(Event(outcome, message_id, partition, offset, attempt, pid, at + 0.1, {}))
    return events


def test_a_clean_run_has_no_problem_and_no_duplicate() -> None:
    sent = acked((0, 0), (0, 1))
    events = run("m000000", 1, T0 + 1) + run("m000001", 1, T0 + 1, outcome=None) + run("m000001", 2, T0 + 2, outcome="dead")
    figures = judge(sent, events, [(T0 + 3, {0: 2})], max_attempts=3, fault_at=None, started_at=T0)
    assert figures.problems == []
    assert (figures.handled, figures.dead_lettered, figures.duplicates, figures.runs) == (1, 1, 0, 3)


def test_an_acknowledged_message_without_an_outcome_is_caught() -> None:
    figures = judge(acked((0, 0), (0, 1)), run("m000000", 1, T0 + 1), [], max_attempts=3, fault_at=None, started_at=T0)
    assert figures.no_outcome == 1 and any("NO OUTCOME" in p and "m000001" in p for p in figures.problems)


def test_a_commit_past_a_message_not_yet_final_is_caught() -> None:
    events = run("m000000", 1, T0 + 1) + run("m000001", 1, T0 + 5)
    figures = judge(acked((0, 0), (0, 1)), events, [(T0 + 2, {0: 2})], max_attempts=3, fault_at=None, started_at=T0)
    assert any("passed m000001" in p for p in figures.problems)


def test_a_committed_offset_moving_backwards_is_caught() -> None:
    events = run("m000000", 1, T0 + 1) + run("m000001", 1, T0 + 1)
    figures = judge(acked((0, 0), (0, 1)), events, [(T0 + 2, {0: 2}), (T0 + 3, {0: 1})], max_attempts=3,
                    fault_at=None, started_at=T0)
    assert any("moved back from 2 to 1" in p for p in figures.problems)


def test_a_run_repeating_an_attempt_is_a_duplicate_and_attempts_past_the_policy_are_caught() -> None:
    events = run("m000000", 1, T0 + 1, outcome=None, pid=1) + run("m000000", 1, T0 + 2, pid=2) + run("m000001", 4, T0 + 1)
    figures = judge(acked((0, 0), (0, 1)), events, [], max_attempts=3, fault_at=None, started_at=T0)
    assert (figures.duplicates, figures.duplicated_messages) == (1, 1)
    assert any("attempt 4 seen" in p for p in figures.problems)


def test_recovery_and_commit_catch_up_are_measured_from_the_fault() -> None:
    events = run("m000000", 1, T0 + 1) + run("m000001", 1, T0 + 9)
    samples = [(T0 + 5, {0: 1}), (T0 + 11, {0: 2})]
    figures = judge(acked((0, 0), (0, 1)), events, samples, max_attempts=3, fault_at=T0 + 2, started_at=T0)
    assert (figures.recovery_s, figures.commits_caught_up_s) == (7.1, 9.0)
