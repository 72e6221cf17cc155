"""The token bucket's maths (kafkabridge.ratelimit.bucket.take), the reference for its Lua script."""

from __future__ import annotations

import math

import pytest

from kafkabridge.ratelimit import BucketState, take


def test_a_new_bucket_is_full_and_grants_up_to_its_burst() -> None:
    grant, state = take(None, now=100.0, rate=10.0, burst=5.0, requested=3)
    assert (grant.granted, grant.wait) == (3, 0.0)
    assert state == BucketState(tokens=2.0, updated_at=100.0)


def test_it_refills_at_its_rate_by_the_time_that_passed() -> None:
    grant, state = take(BucketState(0.0, 100.0), now=100.5, rate=10.0, burst=50.0, requested=10)
    assert grant.granted == 5 and state.tokens == pytest.approx(0.0)


def test_refill_stops_at_the_burst() -> None:
    grant, state = take(BucketState(0.0, 0.0), now=1_000.0, rate=10.0, burst=7.0, requested=100)
    assert grant.granted == 7


def test_a_partial_grant_says_how_long_until_the_next_token() -> None:
    grant, state = take(BucketState(2.5, 100.0), now=100.0, rate=4.0, burst=10.0, requested=5)
    assert grant.granted == 2
    assert grant.wait == pytest.approx((1 - 0.5) / 4.0)
    assert state.tokens == pytest.approx(0.5)


def test_a_clock_going_backwards_adds_no_tokens_and_keeps_the_later_time() -> None:
    grant, state = take(BucketState(1.0, 100.0), now=90.0, rate=10.0, burst=10.0, requested=3)
    assert grant.granted == 1
    assert state.updated_at == 100.0, "so that time is not counted twice when the clock comes back"


def test_a_zero_rate_never_refills_and_its_wait_is_infinite() -> None:
    grant, state = take(BucketState(0.0, 0.0), now=1e9, rate=0.0, burst=10.0, requested=1)
    assert grant.granted == 0 and math.isinf(grant.wait)


def test_a_fractional_rate_grants_a_token_every_so_many_seconds() -> None:
    grant, state = take(BucketState(0.0, 0.0), now=2.0, rate=0.25, burst=5.0, requested=1)
    assert grant.granted == 0 and grant.wait == pytest.approx(2.0)
    grant, _ = take(state, now=4.0, rate=0.25, burst=5.0, requested=1)
    assert grant.granted == 1


def test_a_burst_below_one_token_never_grants() -> None:
    grant, _ = take(None, now=0.0, rate=100.0, burst=0.5, requested=1)
    assert grant.granted == 0 and math.isinf(grant.wait)


def test_asking_for_nothing_grants_nothing_and_waits_for_nothing() -> None:
    grant, _ = take(BucketState(0.0, 0.0), now=0.0, rate=1.0, burst=1.0, requested=0)
    assert (grant.granted, grant.wait) == (0, 0.0)


def test_over_many_takes_the_rate_holds() -> None:
    state, granted, now = None, 0, 0.0
    for _ in range(10_000):
        grant, state = take(state, now=now, rate=50.0, burst=10.0, requested=3)
        granted += grant.granted
        now += 0.01
    assert granted == pytest.approx(10 + 50.0 * now, abs=3)


def test_negative_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        take(None, now=0.0, rate=-1.0, burst=1.0, requested=1)


def test_with_a_horizon_waiting_callers_reserve_slots_one_token_apart() -> None:
    state, waits = BucketState(0.0, 0.0), []
    for _ in range(5):
        grant, state = take(state, now=0.0, rate=10.0, burst=1.0, requested=1, horizon=60.0)
        assert grant.granted == 1
        waits.append(grant.wait)
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5]), "each comes back when its own token is due"
    assert state.tokens == pytest.approx(-5.0)


def test_a_reservation_beyond_the_horizon_is_refused_with_the_time_until_it_fits() -> None:
    grant, state = take(BucketState(-10.0, 0.0), now=0.0, rate=10.0, burst=1.0, requested=1, horizon=0.5)
    assert grant.granted == 0
    assert grant.wait == pytest.approx(1.1 - 0.5)
    assert state.tokens == pytest.approx(-10.0), "nothing reserved"


def test_a_debt_is_paid_back_by_the_refill_before_anything_is_granted() -> None:
    grant, _ = take(BucketState(-3.0, 0.0), now=0.2, rate=10.0, burst=5.0, requested=1)
    assert grant.granted == 0 and grant.wait == pytest.approx(0.2)
