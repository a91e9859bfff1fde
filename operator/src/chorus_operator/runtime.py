"""Running reconciles: one at a time per object, coalesced, timed, counted and announced.

kopf serialises handlers per object, but an Agent is also re-reconciled from other
objects' events (a child changed, a Tool it uses appeared). :class:`Runtime` runs every
reconcile of an object under that object's lock, and folds a burst of triggers (applying
ten children makes ten watch events) into one extra run. It posts a Kubernetes Event for
every condition that changed status, and counts everything in :mod:`chorus_operator.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import kopf

from chorus_operator import apply, kinds, metrics
from chorus_operator.model.errors import DependencyNotReady, SpecInvalid
from chorus_operator.reconcile.agent import cleanup_agent, reconcile_agent
from chorus_operator.reconcile.common import Context, Outcome
from chorus_operator.reconcile.tool import reconcile_tool

Key = tuple[str, str, str]
"""``(kind, namespace, name)`` of an Agent or a Tool."""

log = logging.getLogger("chorus_operator")

DEBOUNCE = 0.5
"""Seconds a scheduled reconcile waits, so a burst of child events makes one run."""


class Runtime:
    """Reconciles Agents and Tools for the handlers; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._locks: dict[Key, asyncio.Lock] = {}
        self._scheduled: dict[Key, asyncio.Task[None]] = {}
        self._started: dict[Key, float] = {}

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _run(
        self, key: Key, body: Mapping[str, Any], fn: Callable[[Context, Any], Awaitable[Outcome]]
    ) -> Outcome:
        kind = key[0]
        started = time.monotonic()
        async with self._lock(key):
            self._started[key] = time.monotonic()
            try:
                # The body a trigger carried may predate the status the previous run wrote
                # (it waited on the lock): reconcile the object as it is now.
                fresh = await self._fresh(key)
                if fresh is None:
                    return Outcome(error=None)
                body = fresh
                outcome = await fn(self.ctx, body)
            except Exception as exc:
                metrics.RECONCILES.labels(kind, "error").inc()
                metrics.ERRORS.labels(kind, type(exc).__name__).inc()
                raise
            finally:
                metrics.DURATION.labels(kind).observe(time.monotonic() - started)
        result = "ok"
        if isinstance(outcome.error, SpecInvalid):
            result = "spec_invalid"
        elif isinstance(outcome.error, DependencyNotReady):
            result = "dependency_not_ready"
        metrics.RECONCILES.labels(kind, result).inc()
        if outcome.error is not None:
            metrics.ERRORS.labels(kind, outcome.error.reason).inc()
        _announce(body, kind, outcome)
        return outcome

    async def agent(self, body: Mapping[str, Any]) -> Outcome:
        """Reconciles the Agent ``body`` names now (after any reconcile of it in flight),
        as it is in the cluster then."""
        meta = body["metadata"]
        return await self._run(("Agent", meta["namespace"], meta["name"]), body, reconcile_agent)

    async def tool(self, body: Mapping[str, Any]) -> Outcome:
        """Reconciles the Tool ``body`` names now (after any reconcile of it in flight),
        as it is in the cluster then."""
        meta = body["metadata"]
        return await self._run(("Tool", meta["namespace"], meta["name"]), body, reconcile_tool)

    async def cleanup(self, body: Mapping[str, Any]) -> int:
        """The Agent finalizer's work (see :func:`cleanup_agent`)."""
        meta = body["metadata"]
        async with self._lock(("Agent", meta["namespace"], meta["name"])):
            return await cleanup_agent(self.ctx, body)

    async def _fresh(self, key: Key) -> dict[str, Any] | None:
        """The object now, or None when it is gone or being deleted."""
        kind, namespace, name = key
        entry = kinds.AGENT if kind == "Agent" else kinds.TOOL
        ref = apply.ObjectRef(entry.api_version, kind, namespace, name)
        body = await apply.get(self.ctx.client, ref)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return {**body, "apiVersion": entry.api_version, "kind": kind}

    def schedule(self, kind: str, namespace: str, name: str) -> None:
        """Reconciles the object soon, with its latest state; repeated calls coalesce."""
        key = (kind, namespace, name)
        pending = self._scheduled.get(key)
        if pending is not None and not pending.done():
            return
        requested = time.monotonic()
        self._scheduled[key] = asyncio.create_task(
            self._later(key, requested), name=f"reconcile {key}"
        )

    async def _later(self, key: Key, requested: float) -> None:
        await asyncio.sleep(DEBOUNCE)
        self._scheduled.pop(key, None)
        async with self._lock(key):
            # A run that started after the trigger read everything afresh: nothing to do.
            if self._started.get(key, float("-inf")) > requested:
                return
        kind, namespace, name = key
        body = {"metadata": {"namespace": namespace, "name": name}}
        try:
            await (self.agent(body) if kind == "Agent" else self.tool(body))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The periodic re-check and the object's own handlers retry; log and go on.
            log.exception("reconcile of %s %s/%s failed", kind, namespace, name)

    async def close(self) -> None:
        """Cancels scheduled reconciles (on shutdown)."""
        tasks = [t for t in self._scheduled.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _announce(body: Mapping[str, Any], kind: str, outcome: Outcome) -> None:
    """A Kubernetes Event per condition whose status changed (Warning when it went bad)."""
    meta = body.get("metadata") or {}
    ref = {
        "apiVersion": body.get("apiVersion", kinds.AGENT.api_version),
        "kind": kind,
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
    }
    for change in outcome.transitions:
        message = f"{change.type} is {change.new}: {change.message}"[:1024]
        if change.bad:
            kopf.warn(cast(Any, ref), reason=change.reason, message=message)
        else:
            kopf.info(cast(Any, ref), reason=change.reason, message=message)
