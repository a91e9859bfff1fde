"""Which condition changes become Kubernetes Events; scheduled reconciles retry failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, cast

import pytest
from chorus_operator.reconcile.common import Context, Outcome
from chorus_operator.runtime import Runtime, announced, retry_delay
from chorus_operator.settings import load_settings
from chorus_operator.status import Transition
from lightkube import AsyncClient


def change(type_: str, old: str | None, new: str, reason: str = "Reason") -> Transition:
    return Transition(type_, old, new, reason, "message")


@pytest.mark.unit
def test_a_healthy_creation_makes_one_event_and_problems_always_one() -> None:
    creation = [
        change("Ready", None, "False", "Pending"),  # its children are being made
        change("TopicsReady", None, "Unknown", "Pending"),
        change("WorkloadReady", None, "Unknown", "Pending"),
        change("TopicsReady", "Unknown", "True"),
        change("WorkloadReady", "Unknown", "True"),
        change("Ready", "False", "True"),
    ]
    assert [c for c in creation if announced(c)] == [creation[-1]]
    assert announced(change("Ready", None, "False", "KafkaNotFound"))  # cannot start
    assert announced(change("Ready", "True", "False", "Pending"))  # a new generation
    assert announced(change("WorkloadReady", "True", "False"))  # went bad
    assert announced(change("StreamsReady", "True", "Unknown"))
    assert not announced(change("StreamsReady", "False", "True"))  # Ready says it


class FlakyRuntime(Runtime):
    """A Runtime whose Agent reconcile fails ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        settings = load_settings({})
        super().__init__(Context(client=cast(AsyncClient, None), settings=settings))
        self.failures = failures
        self.calls: list[float] = []

    async def agent(self, body: Mapping[str, Any]) -> Outcome:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise RuntimeError("the apiserver said 429")
        return Outcome(error=None)


@pytest.mark.unit
def test_retry_delays_back_off_to_a_limit() -> None:
    assert [retry_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.unit
def test_a_scheduled_reconcile_that_fails_is_retried_until_it_succeeds() -> None:
    # A failed run triggered by a child's event is not triggered again by anything but
    # the periodic re-check: the Runtime itself must retry it.
    async def scenario() -> list[float]:
        runtime = FlakyRuntime(failures=2)
        started = time.monotonic()
        runtime.schedule("Agent", "ns", "a")
        for _ in range(100):
            await asyncio.sleep(0.1)
            if len(runtime.calls) == 3:
                break
        await asyncio.sleep(0.5)  # no further run after the success
        await runtime.close()
        return [call - started for call in runtime.calls]

    calls = asyncio.run(scenario())
    assert len(calls) == 3
    # debounce, then 1 s and 2 s of backoff
    assert calls[0] == pytest.approx(0.5, abs=0.3)
    assert calls[1] - calls[0] == pytest.approx(1.0, abs=0.3)
    assert calls[2] - calls[1] == pytest.approx(2.0, abs=0.3)


@pytest.mark.unit
def test_a_fresh_trigger_does_not_wait_for_a_pending_retry() -> None:
    async def scenario() -> list[float]:
        runtime = FlakyRuntime(failures=3)
        started = time.monotonic()
        runtime.schedule("Agent", "ns", "a")
        while len(runtime.calls) < 3:  # two failures: the next retry waits 4 s
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        runtime.schedule("Agent", "ns", "a")  # a child changed meanwhile
        while len(runtime.calls) < 4:
            await asyncio.sleep(0.05)
        await runtime.close()
        return [call - started for call in runtime.calls]

    calls = asyncio.run(scenario())
    assert calls[3] - calls[2] < 1.5  # debounce after the trigger, not the 4 s backoff


class TimedRuntime(Runtime):
    """A Runtime whose Agent reconcile takes ``seconds`` and records when each one ran."""

    def __init__(self, seconds: float) -> None:
        super().__init__(Context(client=cast(AsyncClient, None), settings=load_settings({})))
        self.seconds = seconds
        self.runs: list[float] = []

    async def agent(self, body: Mapping[str, Any]) -> Outcome:
        meta = body["metadata"]
        return await self._run(("Agent", meta["namespace"], meta["name"]), body, self._reconcile)

    async def _fresh(self, key: Any) -> dict[str, Any] | None:
        return {"metadata": {"namespace": key[1], "name": key[2]}}

    async def _reconcile(self, ctx: Context, body: Any) -> Outcome:
        self.runs.append(time.monotonic())  # where it reads the store
        await asyncio.sleep(self.seconds)
        return Outcome(error=None)


@pytest.mark.unit
def test_a_trigger_folded_into_a_pending_run_is_not_lost() -> None:
    # A child's event schedules the Agent (t1); a run starts anyway (a handler's, t_run);
    # a second child's event (t2) is folded into the pending run. That run must still
    # happen: the one that started at t_run read the store before t2's news.
    async def scenario() -> tuple[float, list[float]]:
        runtime = TimedRuntime(seconds=0.5)
        runtime.schedule("Agent", "ns", "a")  # t1
        await asyncio.sleep(0.1)
        body = {"metadata": {"namespace": "ns", "name": "a"}}
        running = asyncio.create_task(runtime.agent(body))  # t_run
        await asyncio.sleep(0.1)
        second = time.monotonic()
        runtime.schedule("Agent", "ns", "a")  # t2: folded into t1's pending run
        await running
        await asyncio.sleep(1.5)
        await runtime.close()
        return second, runtime.runs

    second, runs = asyncio.run(scenario())
    assert any(run > second for run in runs), "no reconcile read the store after t2"


@pytest.mark.unit
def test_a_trigger_before_a_run_started_needs_no_second_run() -> None:
    async def scenario() -> list[float]:
        runtime = TimedRuntime(seconds=0.1)
        runtime.schedule("Agent", "ns", "a")
        await asyncio.sleep(0.1)
        await runtime.agent({"metadata": {"namespace": "ns", "name": "a"}})
        await asyncio.sleep(1.0)
        await runtime.close()
        return runtime.runs

    assert len(asyncio.run(scenario())) == 1  # the run after the trigger covered it


@pytest.mark.unit
def test_a_deleted_object_leaves_nothing_behind() -> None:
    key = ("Agent", "ns", "a")

    async def scenario() -> TimedRuntime:
        runtime = TimedRuntime(seconds=0.05)
        await runtime.agent({"metadata": {"namespace": "ns", "name": "a"}})  # a lock, a start
        runtime.schedule(*key)  # and a reconcile due after the debounce
        runtime.forget(*key)  # its DELETED event
        await asyncio.sleep(1.0)
        await runtime.close()
        return runtime

    runtime = asyncio.run(scenario())
    assert len(runtime.runs) == 1, "the scheduled reconcile of a deleted object still ran"
    kept = (runtime._locks, runtime._scheduled, runtime._due, runtime._triggered, runtime._started)
    assert [table for table in kept if key in table] == []
