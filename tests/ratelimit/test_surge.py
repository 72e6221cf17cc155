"""A surge of 5× the configured rate: the peak of handler executions stays at rate + burst (item 3, short run).

The full 30-second run, with and without the limiter and its plot, is ``python -m bench.ratelimit_surge``;
this is the same measurement on a 6-second surge, with the bridge's intake limit. (The handler limit's peak
depends on how long its tasks queue: tests/ratelimit/test_shared_handler_limit.py.)
"""

from __future__ import annotations

from pathlib import Path

from bench.ratelimit_surge import surge

RATE, BURST = 20.0, 20.0
JITTER = 0.15
"""Handler starts are a worker's pick-up after the bridge's grant, and the bridge's publications are timed at the
broker's confirmation: a one-second window of either may catch up to this many seconds more of the rate than the
bridge granted in any one second (the grants themselves are held to the cap exactly)."""


def test_during_a_surge_of_five_times_the_rate_the_peak_per_second_stays_at_rate_plus_burst(services: None, logs: Path) -> None:
    run = surge("intake", rate=RATE, burst=BURST, multiple=5.0, seconds=6.0, log_dir=logs, drain=2.0)

    steady = run.per_second(8)[2:]
    print(f"\nintake limit: sent {run.sent} at {5 * RATE:.0f}/s, {len(run.starts)} started, peak {run.peak}/s "
          f"(cap {run.cap:.0f}/s; the bridge's peak {run.published_peak}/s), per second {run.per_second(8)}")
    # the bridge's side is timed at the broker's confirmations, after each grant: the limiter grants nothing while
    # a publish is under way, so a window may catch up to JITTER s more of the rate (the surge starts after a
    # warm-up message opened the bridge's broker connection, whose first publish alone took up to 0.4 s in CI)
    assert run.published_peak <= run.cap + max(2, round(RATE * JITTER)), (
        f"the bridge handed on {run.published_peak} messages in one second; cap {run.cap:.0f}")
    assert run.peak <= run.cap * (1 + JITTER), f"peak {run.peak}/s above rate + burst = {run.cap:.0f}/s: {run.per_second(8)}"
    assert sum(steady) >= 0.9 * RATE * len(steady), f"the limit let fewer through than its rate: {steady}"
