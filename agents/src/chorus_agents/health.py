"""Liveness and readiness of one agent process: ``/healthz`` and ``/readyz``.

- ``/healthz`` (liveness): the process' event loop turns (a heartbeat younger than
  ``stall_after`` seconds) and the Kafka loop has not died. 503 tells the kubelet to
  restart the container.
- ``/readyz`` (readiness): the Kafka loop serves, Kafka was reachable lately, the
  consumer holds an assignment, and Kafka refuses the agent nothing. While Kafka refuses
  access (TopicAuthorizationFailed, GroupAuthorizationFailed,
  TransactionalIdAuthorizationFailed, ...) the agent stays not ready and says why; the
  loop backs off instead of retrying hot.

Both answer JSON: ``{"status": "ok"|"failing", "checks": {name: "ok" | why}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"

Check = Callable[[], str | None]
"""A check: ``None`` when fine, else why not (one line, for people)."""


@dataclass
class Health:
    """The checks of one process; :meth:`beat` runs the heartbeat while the agent runs."""

    liveness: dict[str, Check] = field(default_factory=dict)
    readiness: dict[str, Check] = field(default_factory=dict)
    stall_after: float = 30.0
    beat_every: float = 1.0
    last_beat: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.liveness.setdefault("event-loop", self._turning)

    def _turning(self) -> str | None:
        age = time.monotonic() - self.last_beat
        return None if age < self.stall_after else f"no heartbeat for {age:.0f}s"

    async def beat(self, stop: asyncio.Event) -> None:
        """Updates the heartbeat until ``stop`` is set."""
        while not stop.is_set():
            self.last_beat = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.beat_every)

    def alive(self) -> dict[str, str]:
        """Every liveness check's result."""
        return _run(self.liveness)

    def ready(self) -> dict[str, str]:
        """Every liveness and readiness check's result (not alive is not ready)."""
        return {**self.alive(), **_run(self.readiness)}

    def routes(self) -> list[Route]:
        """``/healthz`` and ``/readyz``."""

        async def health(_: Request) -> Response:
            return _answer(self.alive())

        async def readiness(_: Request) -> Response:
            return _answer(self.ready())

        return [
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(READY_PATH, readiness, methods=["GET"]),
        ]


def _run(checks: Mapping[str, Check]) -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            results[name] = check() or "ok"
        except Exception as exc:  # a broken check must say so, not break the probe
            results[name] = f"check failed: {exc!r}"
    return results


def _answer(results: Mapping[str, str]) -> Response:
    ok = all(result == "ok" for result in results.values())
    return JSONResponse(
        {"status": "ok" if ok else "failing", "checks": dict(results)},
        status_code=200 if ok else 503,
    )
