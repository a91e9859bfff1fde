"""Running reconciles: one at a time per object, at most a few at once, coalesced, timed,
counted and announced.

kopf serialises handlers per object, but an Agent is also re-reconciled from other
objects' events (a child changed, a Tool it uses appeared). :class:`Runtime` runs every
reconcile of an object under that object's lock, and folds a burst of triggers (applying
ten children makes ten watch events) into one extra run. At most
``CHORUS_MAX_CONCURRENT_RECONCILES`` reconciles run at once: a burst of 500 new Agents
queues (fairly, in arrival order) instead of opening 500 requests at once and timing out.
It posts a Kubernetes Event when a condition went bad and when Ready changed, and counts
everything in :mod:`chorus_operator.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import kopf

from chorus_operator import apply, kinds, metrics
from chorus_operator.cache import kept_copy
from chorus_operator.diffbase import MemoryDiffBaseStorage
from chorus_operator.model.errors import DependencyNotReady, SpecInvalid
from chorus_operator.reconcile.agent import cleanup_agent, reconcile_agent
from chorus_operator.reconcile.common import Context, Outcome
from chorus_operator.reconcile.tool import reconcile_tool
from chorus_operator.status import Transition

Key = tuple[str, str, str]
"""``(kind, namespace, name)`` of an Agent or a Tool."""

log = logging.getLogger("chorus_operator")

PENDING = "Pending"
"""The reason of a condition whose child has not been reported on yet (see status.py)."""
DEBOUNCE = 0.5
"""Seconds a scheduled reconcile waits, so a burst of child events makes one run."""
RETRY_LIMIT = 60.0
"""Longest wait before retrying a scheduled reconcile that failed."""


def retry_delay(failures: int) -> float:
    """Seconds before retrying a scheduled reconcile after its ``failures + 1``-th failure
    in a row: 1, 2, 4, ... up to :data:`RETRY_LIMIT`."""
    return float(min(RETRY_LIMIT, 2 ** min(failures, 10)))


class Runtime:
    """Reconciles Agents and Tools for the handlers; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.diffbase = MemoryDiffBaseStorage()
        """kopf's last-handled state of each object (see :mod:`chorus_operator.diffbase`)."""
        self._locks: dict[Key, asyncio.Lock] = {}
        self._scheduled: dict[Key, asyncio.Task[None]] = {}
        self._due: dict[Key, float] = {}
        """When each scheduled reconcile wakes (monotonic seconds)."""
        self._triggered: dict[Key, float] = {}
        """When each object was last scheduled (monotonic seconds)."""
        self._started: dict[Key, float] = {}
        self._slots = asyncio.Semaphore(ctx.settings.max_concurrent_reconciles)
        self._waiting = 0
        """Reconciles waiting for their object's lock or a slot."""

    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _run(
        self, key: Key, body: Mapping[str, Any], fn: Callable[[Context, Any], Awaitable[Outcome]]
    ) -> Outcome:
        kind = key[0]
        queued = time.monotonic()
        self._waiting += 1
        try:
            await self._lock(key).acquire()
            try:
                await self._slots.acquire()
            except BaseException:
                self._lock(key).release()
                raise
        finally:
            self._waiting -= 1
        try:
            started = time.monotonic()
            self._started[key] = started
            metrics.WAIT.labels(kind).observe(started - queued)
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
        finally:
            self._slots.release()
            self._lock(key).release()
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
        self._remember("Agent", body)
        return await self._run(("Agent", meta["namespace"], meta["name"]), body, reconcile_agent)

    async def tool(self, body: Mapping[str, Any]) -> Outcome:
        """Reconciles the Tool ``body`` names now (after any reconcile of it in flight),
        as it is in the cluster then."""
        meta = body["metadata"]
        self._remember("Tool", body)
        return await self._run(("Tool", meta["namespace"], meta["name"]), body, reconcile_tool)

    def _remember(self, kind: str, body: Mapping[str, Any]) -> None:
        if (body.get("metadata") or {}).get("resourceVersion"):
            entry = kinds.AGENT if kind == "Agent" else kinds.TOOL
            self.ctx.store.put(entry.api_version, kind, body, keep=kept_copy)

    async def cleanup(self, body: Mapping[str, Any]) -> int:
        """The Agent finalizer's work (see :func:`cleanup_agent`)."""
        meta = body["metadata"]
        async with self._lock(("Agent", meta["namespace"], meta["name"])):
            return await cleanup_agent(self.ctx, body)

    async def _fresh(self, key: Key) -> dict[str, Any] | None:
        """The object now (the newest version seen, else read), or None when it is gone or
        being deleted."""
        kind, namespace, name = key
        entry = kinds.AGENT if kind == "Agent" else kinds.TOOL
        body = self.ctx.store.get(entry.api_version, kind, namespace, name)
        if body is None:
            ref = apply.ObjectRef(entry.api_version, kind, namespace, name)
            body = await apply.get(self.ctx.client, ref)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return {**body, "apiVersion": entry.api_version, "kind": kind}

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drops what is kept per object once it is gone (its DELETED event): a scheduled
        reconcile still asleep (it would find nothing), the times, and the lock unless a
        reconcile holds it. Without this, every Agent or Tool ever deleted left them behind."""
        key = (kind, namespace, name)
        pending = self._scheduled.pop(key, None)
        if pending is not None:
            pending.cancel()  # still asleep: it leaves _scheduled when it wakes
        for times in (self._due, self._triggered, self._started):
            times.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]

    def schedule(self, kind: str, namespace: str, name: str) -> None:
        """Reconciles the object soon, with its latest state; repeated calls coalesce."""
        self._schedule((kind, namespace, name), DEBOUNCE, failures=0)

    def _schedule(self, key: Key, delay: float, *, failures: int) -> None:
        requested = time.monotonic()
        self._triggered[key] = requested
        pending = self._scheduled.get(key)
        if pending is not None and not pending.done():
            if self._due[key] <= requested + delay:
                return
            # A fresh trigger does not wait for a pending retry's backoff. The pending task
            # is still asleep (it leaves _scheduled when it wakes): cancelling loses nothing.
            pending.cancel()
        self._due[key] = requested + delay
        self._scheduled[key] = asyncio.create_task(
            self._later(key, delay, failures), name=f"reconcile {key}"
        )

    async def _later(self, key: Key, delay: float, failures: int) -> None:
        await asyncio.sleep(delay)
        self._scheduled.pop(key, None)
        # The latest trigger folded into this run, not the first: a run that started between
        # the two may have read the store before the second one's news arrived.
        triggered = self._triggered[key]
        async with self._lock(key):
            # A run that started after every trigger read everything afresh: nothing to do.
            if self._started.get(key, float("-inf")) > triggered:
                return
        kind, namespace, name = key
        body = {"metadata": {"namespace": namespace, "name": name}}
        try:
            await (self.agent(body) if kind == "Agent" else self.tool(body))
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing else would retry it before the periodic re-check (minutes away): the
            # trigger that scheduled it (a child turning ready, say) does not come again.
            retry = retry_delay(failures)
            log.exception(
                "reconcile of %s %s/%s failed; retrying in %.0f s", kind, namespace, name, retry
            )
            self._schedule(key, retry, failures=failures + 1)

    async def close(self) -> None:
        """Cancels scheduled reconciles (on shutdown)."""
        tasks = [t for t in self._scheduled.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def announced(change: Transition) -> bool:
    """Whether a condition change is worth an Event: it went bad (a Warning), or Ready
    changed after it had been reported once. A new object's first report of Ready False
    because its children are still being made (reason ``Pending``) is neither: it is how
    every healthy creation starts, so it would be a Warning on each. A healthy Agent's
    creation makes one Event, Ready True; one that cannot start makes a Warning with the
    reason (``KafkaNotFound``, ``ToolNotFound``, ...)."""
    if change.old is None and change.reason == PENDING:
        return False
    return change.bad or (change.type == "Ready" and change.old is not None)


def _announce(body: Mapping[str, Any], kind: str, outcome: Outcome) -> None:
    """A Kubernetes Event per announced condition change (see :func:`announced`)."""
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
        if not announced(change):
            continue
        message = f"{change.type} is {change.new}: {change.message}"[:1024]
        # kopf.event, not kopf.info: kopf's own "handler succeeded" Events are off
        # (posting level WARNING), Chorus' transitions are not.
        kind_ = "Warning" if change.bad else "Normal"
        kopf.event(cast(Any, ref), type=kind_, reason=change.reason, message=message)
