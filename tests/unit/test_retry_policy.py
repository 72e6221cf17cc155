import random

import pytest

from kafkabridge import GiveUp, PoisonMessage, RetryPolicy
from kafkabridge.errors import ConfigurationError
from kafkabridge.retry_policy import DeadLetterNow, RetryLater


def test_delays_grow_exponentially_without_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=300.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_delays_stay_within_the_jitter_fraction_over_many_samples() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=300.0, jitter=0.2)
    rng = random.Random(7)
    for attempt in range(1, 8):
        nominal = 2 ** (attempt - 1)
        samples = [policy.delay(attempt, rng.random) for _ in range(2_000)]
        assert min(samples) >= nominal * 0.8
        assert max(samples) <= nominal * 1.2
        assert max(samples) - min(samples) > nominal * 0.3, "jitter should actually spread the delays"


def test_the_cap_applies_after_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5)
    assert policy.delay(30, lambda: 0.999999) == 10.0
    assert policy.delay(30, lambda: 0.0) == 5.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert RetryPolicy(max_delay=60.0, jitter=0.0).delay(10_000) == 60.0


def test_the_random_source_is_injectable() -> None:
    policy = RetryPolicy(base_delay=2.0, jitter=0.2)
    assert policy.delay(1, lambda: 0.0) == pytest.approx(1.6)
    assert policy.delay(1, lambda: 0.5) == pytest.approx(2.0)


def test_failures_are_retried_until_max_attempts_then_dead_lettered() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=0.0)
    assert policy.decide(RuntimeError("x"), 1) == RetryLater(1.0)
    assert policy.decide(RuntimeError("x"), 2) == RetryLater(2.0)
    decision = policy.decide(RuntimeError("x"), 3)
    assert isinstance(decision, DeadLetterNow) and "exhausted after 3" in decision.reason


def test_give_up_dead_letters_at_once_with_its_reason() -> None:
    decision = RetryPolicy().decide(GiveUp("order cancelled"), 1)
    assert decision == DeadLetterNow("gave up: order cancelled")
    assert isinstance(RetryPolicy().decide(PoisonMessage("bad json", raw=b"{"), 1), DeadLetterNow)


def test_give_up_on_wins_over_retry_on() -> None:
    policy = RetryPolicy(retry_on=(Exception,), give_up_on=(ValueError,))
    assert isinstance(policy.decide(ValueError("no"), 1), DeadLetterNow)
    assert isinstance(policy.decide(KeyError("k"), 1), RetryLater)


def test_exceptions_outside_retry_on_are_not_retried() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError,))
    assert isinstance(policy.decide(ConnectionError(), 1), RetryLater)
    assert isinstance(policy.decide(TypeError(), 1), DeadLetterNow)


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_delay": 5.0, "max_delay": 1.0}, {"jitter": 1.5}, {"jitter": -0.1}, {"multiplier": 0.5}],
)
def test_nonsense_policies_are_refused(options: dict) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**options)
