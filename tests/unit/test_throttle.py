"""A handler's throttle leases tokens: one round trip per lease when the limit does not bind, one token
per round trip when it does, and an expired lease's tokens are never used."""

from __future__ import annotations

from typing import Sequence

from kafkabridge.ratelimit.bucket import BucketState, Grant, take
from kafkabridge.ratelimit.limits import Limit
from kafkabridge.worker.throttle import LEASE_SECONDS, MAX_LEASE, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BucketLimiter:
    """The limiter's interface over the pure bucket maths: what a shared bucket would grant, and each request."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._state: BucketState | None = None
        self.requests: list[int] = []

    def limit(self, name: str, configured: Limit) -> Limit:
        return configured

    def take_many(self, requests: Sequence[tuple[str, int, float, float]], *, horizon: float = 0.0) -> list[Grant]:
        [(_, wanted, rate, burst)] = requests
        self.requests.append(wanted)
        grant, self._state = take(self._state, now=self._clock(), rate=rate, burst=burst, requested=wanted)
        return [grant]

    def publish_effective(self, rates: object) -> None:
        pass


def throttle(rate: float, burst: float) -> tuple[Throttle, BucketLimiter, Clock]:
    clock = Clock()
    limiter = BucketLimiter(clock)
    return Throttle(limiter, "tasks.h", Limit(rate=rate, burst=burst), clock=clock), limiter, clock  # type: ignore[arg-type]


def test_a_limit_that_never_binds_costs_one_round_trip_per_lease_not_per_run() -> None:
    gate, limiter, clock = throttle(rate=1e9, burst=1e9)
    for _ in range(2_000):
        assert gate.take(sleep=lambda _: None) == 0.0
        clock.now += 0.0001  # 10,000 runs per second in this process
    assert len(limiter.requests) < 2_000 / 50, limiter.requests[:20]
    assert max(limiter.requests) == MAX_LEASE


def test_a_binding_low_rate_takes_one_token_per_round_trip() -> None:
    gate, limiter, clock = throttle(rate=5, burst=5)
    for _ in range(20):
        gate.take(sleep=lambda seconds: setattr(clock, "now", clock.now + seconds))
    assert set(limiter.requests) == {1}


def test_a_lease_never_holds_more_than_its_share_of_the_rate() -> None:
    gate, limiter, clock = throttle(rate=400, burst=400)
    for _ in range(500):
        gate.take(sleep=lambda seconds: setattr(clock, "now", clock.now + seconds))
    assert max(limiter.requests) <= 400 * LEASE_SECONDS


def test_tokens_of_an_expired_lease_are_not_used_and_the_lease_shrinks() -> None:
    gate, limiter, clock = throttle(rate=1e6, burst=1e6)
    for _ in range(10):  # the lease grows while it is used up
        for _ in range(limiter.requests[-1] if limiter.requests else 1):
            gate.take()
    grown = limiter.requests[-1]
    gate.take()  # one token of a new lease used, the rest left
    asked = len(limiter.requests)
    clock.now += LEASE_SECONDS * 1.01
    gate.take()
    assert len(limiter.requests) == asked + 1, "an expired lease's token was used"
    assert limiter.requests[-1] < limiter.requests[-2] <= 2 * grown


def test_runs_in_any_second_never_exceed_the_rate_plus_the_burst() -> None:
    gate, limiter, clock = throttle(rate=200, burst=20)
    starts = []
    for _ in range(3_000):
        gate.take(max_wait=10.0, sleep=lambda seconds: setattr(clock, "now", clock.now + seconds))
        starts.append(clock.now)
        clock.now += 0.0005
    first = starts[0]
    per_second = [sum(1 for s in starts if first + k <= s < first + k + 1) for k in range(int(starts[-1] - first))]
    assert max(per_second) <= 200 + 20, per_second
    assert min(per_second) >= 200 * 0.9, per_second
