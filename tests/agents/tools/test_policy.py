"""Backoff delays and the circuit breaker's states, on an injected clock."""

from __future__ import annotations

import pytest
from chorus_agents.tools import BreakerState, CircuitBreaker, RetryPolicy

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def test_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=3.0)
    assert [policy.delay(n, lambda: 0.0) for n in range(4)] == [0.25, 0.5, 1.0, 1.5]
    assert [policy.delay(n, lambda: 0.999) for n in range(4)] == pytest.approx(
        [0.49975, 0.9995, 1.999, 2.9985]
    )
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)


def test_the_breaker_opens_after_consecutive_failures_and_recovers_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown=10.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.allow() and state(breaker) is BreakerState.CLOSED
    breaker.failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == 10.0

    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()  # the one trial
    assert not breaker.allow()  # no second trial while the first runs
    breaker.success()
    assert state(breaker) is BreakerState.CLOSED and breaker.allow()


def test_a_failed_trial_opens_the_breaker_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0, clock=clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.allow()
    breaker.failure()
    assert state(breaker) is BreakerState.OPEN and not breaker.allow()
    clock.now += 5.0
    assert breaker.allow()
