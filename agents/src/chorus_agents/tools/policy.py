"""Retry with exponential backoff and jitter, and a circuit breaker: pure, clock injected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    Attempt ``n`` (from 0) that failed waits ``min(max_delay, base_delay * 2**n)`` scaled
    by a jitter factor in ``[0.5, 1.0)`` before the next attempt ("equal jitter": callers
    failing together do not retry together, and no wait is shorter than half its step).
    """

    attempts: int = 3
    """Attempts in all, the first included; 1 means no retry."""
    base_delay: float = 0.2
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry policy: attempts must be at least 1, not {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry policy: delays must not be negative")

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """The wait after the failed attempt ``attempt`` (0-based); ``random()`` in [0, 1)."""
        step = min(self.max_delay, self.base_delay * (2.0**attempt))
        return step * (0.5 + random() / 2)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """One server's breaker: closed -> open -> half-open -> closed.

    Closed, every call goes through; ``failure_threshold`` consecutive failures open it.
    Open, calls are refused until ``cooldown`` seconds (by ``clock``) have passed; then
    it is half-open and lets one trial call through: its success closes the breaker, its
    failure opens it again for another cool-down. Not thread-safe; one event loop.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float],
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(
                f"circuit breaker: failure_threshold must be at least 1, not {failure_threshold}"
            )
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker past its cool-down reads half-open)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when it would now)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go through now; a half-open breaker admits one trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial = True
        return True

    def success(self) -> None:
        """The call went through: the breaker closes."""
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial = False

    def failure(self) -> None:
        """The call failed (unreachable, timed out): count it, maybe open."""
        self._failures += 1
        if self._trial or self._failures >= self.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial = False
