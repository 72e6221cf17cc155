"""What a limit is (kafkabridge.ratelimit.limits), the lag's moving average, and the limiter's local fallback.

The fallback is forced with a real Redis client pointed at a port nobody listens on: every call to
Redis fails as it does when Redis is down, and the limiter's clock is a number the test moves.
"""

from __future__ import annotations

import math
import socket

import pytest
from redis import Redis

from kafkabridge.errors import ConfigurationError
from kafkabridge.hooks import HookDispatcher, Hooks
from kafkabridge.ratelimit import LagSmoother, Limit
from kafkabridge.ratelimit.limiter import RETRY_REDIS_EVERY, RateLimiter

# -- Limit -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [-1.0, math.inf, math.nan])
def test_a_limit_refuses_a_rate_that_is_negative_or_not_finite(rate: float) -> None:
    with pytest.raises(ConfigurationError, match="rate"):
        Limit(rate=rate)


def test_a_limit_refuses_a_burst_below_one_token() -> None:
    with pytest.raises(ConfigurationError, match="burst"):
        Limit(rate=10.0, burst=0.5)


def test_a_limit_refuses_a_max_rate_below_its_rate() -> None:
    with pytest.raises(ConfigurationError, match="max_rate"):
        Limit(rate=10.0, max_rate=5.0)


@pytest.mark.parametrize("options", [{"lag_scale": 0.0}, {"lag_scale": -1.0}, {"lag_threshold": -1.0}])
def test_a_limit_refuses_a_lag_scale_that_is_not_positive_and_a_negative_threshold(options: dict) -> None:
    with pytest.raises(ConfigurationError, match="lag"):
        Limit(rate=10.0, max_rate=20.0, **options)


def test_a_rate_of_zero_is_a_valid_limit_that_stops_everything() -> None:
    assert Limit(rate=0.0).rate == 0.0


@pytest.mark.parametrize(("limit", "capacity"), [
    (Limit(rate=50.0), 50.0),              # one second's worth
    (Limit(rate=0.2), 1.0),                # but at least one token
    (Limit(rate=0.0), 1.0),
    (Limit(rate=50.0, burst=5.0), 5.0),    # as configured
])
def test_the_capacity_is_the_burst_or_one_seconds_worth_and_at_least_one_token(limit: Limit, capacity: float) -> None:
    assert limit.capacity == capacity


# -- the lag-adaptive rate ---------------------------------------------------------------------------

ADAPTIVE = Limit(rate=100.0, max_rate=500.0, lag_threshold=1000.0, lag_scale=5000.0)


def test_without_a_max_rate_the_rate_ignores_the_lag() -> None:
    assert [Limit(rate=100.0).effective_rate(lag) for lag in (0, 1e3, 1e9)] == [100.0, 100.0, 100.0]


def test_up_to_the_threshold_the_effective_rate_is_the_base_rate() -> None:
    assert [ADAPTIVE.effective_rate(lag) for lag in (0.0, 500.0, 1000.0)] == [100.0, 100.0, 100.0]


def test_at_threshold_plus_scale_the_effective_rate_is_half_way_to_the_maximum() -> None:
    assert ADAPTIVE.effective_rate(1000.0 + 5000.0) == pytest.approx(300.0)


def test_the_effective_rate_follows_the_stated_formula() -> None:
    for lag in (1001.0, 2500.0, 7000.0, 40_000.0):
        excess = lag - 1000.0
        assert ADAPTIVE.effective_rate(lag) == pytest.approx(100.0 + 400.0 * excess / (excess + 5000.0))


def test_the_effective_rate_rises_with_the_lag_continuously_and_never_reaches_the_maximum() -> None:
    lags = [1000.0 + 10.0 * 1.5**i for i in range(40)]  # just past the threshold up to ~1e8
    rates = [ADAPTIVE.effective_rate(lag) for lag in lags]
    assert rates == sorted(rates) and len(set(rates)) == len(rates), "strictly rising past the threshold"
    assert all(rate < 500.0 for rate in rates)
    assert rates[-1] == pytest.approx(500.0, rel=1e-3), "it approaches the maximum"
    assert ADAPTIVE.effective_rate(1000.0 + 1e-6) == pytest.approx(100.0), "no jump at the threshold"


def test_a_max_rate_equal_to_the_rate_keeps_it_flat() -> None:
    assert Limit(rate=100.0, max_rate=100.0).effective_rate(1e9) == 100.0


# -- overrides and settings --------------------------------------------------------------------------


def test_an_override_replaces_the_fields_it_names_and_ignores_unknown_ones() -> None:
    merged = ADAPTIVE.merged({"rate": 50.0, "burst": 10.0, "colour": "red"})
    assert merged == Limit(rate=50.0, burst=10.0, max_rate=500.0, lag_threshold=1000.0, lag_scale=5000.0)


def test_an_empty_override_changes_nothing() -> None:
    assert ADAPTIVE.merged({}) == ADAPTIVE


def test_an_override_that_makes_the_limit_invalid_is_refused() -> None:
    """A rate above the configured max_rate is valid on its own (an operator leaves max_rate blank)
    and invalid together with the configuration: merged() raises (see test_admin.py for what running
    processes then do)."""
    with pytest.raises(ConfigurationError):
        ADAPTIVE.merged({"rate": 600.0})


def test_a_limit_from_settings_reads_every_option_in_any_case_as_floats() -> None:
    limit = Limit.from_mapping({"RATE": 100, "burst": "200", "Max_Rate": 500, "LAG_THRESHOLD": 1000, "LAG_SCALE": 5000})
    assert limit == Limit(rate=100.0, burst=200.0, max_rate=500.0, lag_threshold=1000.0, lag_scale=5000.0)
    assert isinstance(limit.rate, float) and isinstance(limit.burst, float)


def test_a_limit_from_settings_keeps_a_null_burst_as_the_default() -> None:
    assert Limit.from_mapping({"RATE": 5, "BURST": None}).burst is None


def test_a_limit_from_settings_without_a_rate_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs RATE"):
        Limit.from_mapping({"BURST": 10})


def test_a_misspelt_limit_option_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown rate limit option\(s\) brust.*known: RATE, BURST"):
        Limit.from_mapping({"RATE": 10, "BRUST": 10})


def test_a_limit_from_settings_is_validated_like_any_limit() -> None:
    with pytest.raises(ConfigurationError, match="max_rate"):
        Limit.from_mapping({"RATE": 10, "MAX_RATE": 1})


# -- the lag's moving average ------------------------------------------------------------------------


def test_the_smoothed_lag_is_zero_before_any_sample_and_the_first_sample_as_it_is() -> None:
    smoother = LagSmoother(tau=10.0)
    assert smoother.value == 0.0
    assert smoother.observe(800.0, now=5.0) == 800.0


def test_after_one_time_constant_the_smoothed_lag_has_moved_63_percent_of_the_way() -> None:
    smoother = LagSmoother(tau=10.0)
    smoother.observe(0.0, now=0.0)
    assert smoother.observe(1000.0, now=10.0) == pytest.approx(1000.0 * (1 - math.exp(-1)))


def test_the_smoothing_depends_on_elapsed_time_not_on_how_many_samples_came() -> None:
    one, many = LagSmoother(tau=10.0), LagSmoother(tau=10.0)
    one.observe(0.0, now=0.0)
    many.observe(0.0, now=0.0)
    one.observe(1000.0, now=6.0)
    for step in range(1, 31):
        many.observe(1000.0, now=step * 0.2)
    assert many.value == pytest.approx(one.value)


def test_a_spike_of_lag_moves_the_smoothed_value_a_little_and_it_decays_back() -> None:
    smoother = LagSmoother(tau=10.0)
    smoother.observe(100.0, now=0.0)
    spiked = smoother.observe(10_000.0, now=2.0)
    assert 100.0 < spiked < 100.0 + 0.2 * 9_900.0, "one 2 s sample of a spike moves it less than a fifth of the way"
    for step in range(2, 60):
        smoother.observe(100.0, now=2.0 * step)
    assert smoother.value == pytest.approx(100.0, abs=10.0)


def test_a_clock_going_back_changes_nothing() -> None:
    smoother = LagSmoother(tau=10.0)
    smoother.observe(500.0, now=100.0)
    assert smoother.observe(5.0, now=90.0) == 500.0


# -- the limiter's local fallback --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Seen(Hooks):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_rate_limit_degraded(self, kind: str, live_instances: int) -> None:
        self.events.append(("degraded", kind, live_instances))

    def on_rate_limit_restored(self, kind: str) -> None:
        self.events.append(("restored", kind))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable() -> tuple[RateLimiter, Clock, Seen]:
    clock, seen = Clock(), Seen()
    # as limiter_for() makes its client (Redis(host=...) would add redis-py's retries with backoff: seconds per call)
    client = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.5, socket_connect_timeout=0.5)
    return RateLimiter(client, kind="worker", hooks=HookDispatcher([seen]), clock=clock), clock, seen


def test_without_redis_the_limiter_grants_from_a_local_bucket_and_says_so_once(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, clock, seen = unreachable
    grant = limiter.take_many([("handler|h", 3, 10.0, 5.0)])[0]
    assert (grant.granted, grant.wait) == (3, 0.0), "a local bucket starts full"
    assert limiter.degraded
    for _ in range(5):
        clock.now += RETRY_REDIS_EVERY  # each take tries Redis again, and fails again
        limiter.take_many([("handler|h", 1, 10.0, 5.0)])
    assert seen.events == [("degraded", "worker", 1)], "one event for the whole outage"


def test_a_lone_process_falls_back_to_the_whole_rate(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, clock, _ = unreachable
    assert limiter.take_many([("b", 100, 10.0, 10.0)])[0].granted == 10, "the burst"
    clock.now += 2.0
    grant = limiter.take_many([("b", 100, 10.0, 10.0)])[0]
    assert grant.granted == 10, "refilled at 10/s for 2 s, capped at the burst"
    assert grant.wait == pytest.approx(0.1), "the next token in 1 / rate"


def test_with_four_live_processes_each_falls_back_to_a_quarter_of_the_rate_and_of_the_burst(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, clock, seen = unreachable
    limiter._live = 4  # what the heartbeat registry last said: four processes of this kind are alive
    assert limiter.take_many([("b", 100, 40.0, 20.0)])[0].granted == 5, "a quarter of the burst"
    clock.now += 0.5
    grant = limiter.take_many([("b", 100, 40.0, 20.0)])[0]
    assert grant.granted == 5, "10/s for half a second"
    assert grant.wait == pytest.approx(0.1)
    assert seen.events == [("degraded", "worker", 4)]


def test_a_process_that_alone_takes_from_its_buckets_falls_back_to_the_whole_rate_however_many_are_live() -> None:
    clock = Clock()
    client = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.5, socket_connect_timeout=0.5)
    limiter = RateLimiter(client, kind="bridge", clock=clock, shared=False)  # a partition has one consumer
    limiter._live = 4
    assert limiter.take_many([("b", 100, 40.0, 20.0)])[0].granted == 20, "the whole burst"
    clock.now += 0.5
    assert limiter.take_many([("b", 100, 40.0, 20.0)])[0].granted == 20, "40/s for half a second"


def test_a_burst_smaller_than_the_number_of_processes_still_lets_each_hold_one_token(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, _, _ = unreachable
    limiter._live = 8
    assert limiter.take_many([("b", 5, 8.0, 2.0)])[0].granted == 1


def test_each_bucket_name_has_its_own_local_bucket(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, _, _ = unreachable
    grants = limiter.take_many([("a", 10, 1.0, 3.0), ("b", 10, 1.0, 5.0), ("a", 10, 1.0, 3.0)])
    assert [g.granted for g in grants] == [3, 5, 0]


def test_a_zero_rate_falls_back_to_nothing_but_the_burst_and_an_infinite_wait(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, clock, _ = unreachable
    assert limiter.take_many([("z", 5, 0.0, 2.0)])[0].granted == 2
    clock.now += 3600.0
    grant = limiter.take_many([("z", 5, 0.0, 2.0)])[0]
    assert grant.granted == 0 and math.isinf(grant.wait)


def test_without_redis_the_configured_limit_applies_and_nothing_is_published(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, clock, _ = unreachable
    configured = Limit(rate=7.0, burst=3.0)
    assert limiter.limit("handler:h", configured) == configured, "no overrides can be read: the configuration holds"
    limiter.take_many([("b", 1, 1.0, 1.0)])
    limiter.publish_effective({"b": 1.0})  # no error while degraded: best effort


def test_asking_for_nothing_does_not_touch_redis(unreachable) -> None:  # type: ignore[no-untyped-def]
    limiter, _, seen = unreachable
    assert limiter.take_many([]) == []
    assert not limiter.degraded and seen.events == []
