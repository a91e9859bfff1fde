"""The lean dispatcher: the AgentExecutor contract without the SDK's task machinery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import (
    Message,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
)
from a2a.utils.errors import InternalError
from chorus_agents.binding.dispatch import LeanDispatcher
from chorus_agents.card import build_agent_card

from tests.agents.conftest import ScriptExecutor, answer_text, user_text

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


class CountingStore(InMemoryTaskStore):
    """An in-memory store that records the state of every save."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[int] = []

    async def save(self, task: Task, context: ServerCallContext) -> None:
        self.saved.append(task.status.state)
        await super().save(task, context)


def dispatcher() -> tuple[LeanDispatcher, CountingStore, ScriptExecutor]:
    store, executor = CountingStore(), ScriptExecutor()
    return LeanDispatcher(executor, store, streaming=True), store, executor


def send(text: str, **configuration: Any) -> SendMessageRequest:
    return SendMessageRequest(
        message=user_text(text), configuration=SendMessageConfiguration(**configuration)
    )


async def test_a_task_that_ends_at_once_is_saved_once_complete() -> None:
    lean, store, _ = dispatcher()
    context = ServerCallContext()

    task = await lean.send(send("echo AAPL"), context)

    assert isinstance(task, Task)
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(task) == "echo: AAPL"
    assert [m.parts[0].text for m in task.history] == ["echo AAPL"]
    assert store.saved == [TaskState.TASK_STATE_COMPLETED]
    stored = await store.get(task.id, context)
    assert stored is not None and stored == task
    assert not lean.runs


async def test_a_message_answer_saves_no_task() -> None:
    lean, store, _ = dispatcher()

    answer = await lean.send(send("message hi"), ServerCallContext())

    assert isinstance(answer, Message) and answer_text(answer) == "said: hi"
    assert store.saved == []


async def test_a_long_task_is_saved_while_it_runs_and_can_be_cancelled() -> None:
    lean, store, executor = dispatcher()
    context = ServerCallContext()
    events: list[Any] = []

    async def follow() -> None:
        async for event in lean.stream(send("wait"), context):
            events.append(event)

    follower = asyncio.create_task(follow())
    while not store.saved or store.saved[-1] != TaskState.TASK_STATE_WORKING:
        await asyncio.sleep(0.01)
    (task_id,) = lean.runs
    run = lean.running(task_id)
    assert run is not None

    cancelled = await run.cancel(context)
    await asyncio.wait_for(follower, 10)

    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert executor.cancelled == [task_id]
    assert isinstance(events[0], Task)
    assert events[-1].status.state == TaskState.TASK_STATE_CANCELED
    stored = await store.get(task_id, context)
    assert stored is not None and stored.status.state == TaskState.TASK_STATE_CANCELED
    assert lean.running(task_id) is None


async def test_a_streamed_task_sends_every_chunk_in_order() -> None:
    lean, _, _ = dispatcher()

    events = [e async for e in lean.stream(send("stream 4"), ServerCallContext())]

    chunks = [e for e in events if isinstance(e, TaskArtifactUpdateEvent)]
    assert [c.artifact.parts[0].text for c in chunks] == [f"chunk {i};" for i in range(4)]
    assert events[-1].status.state == TaskState.TASK_STATE_COMPLETED


async def test_an_executor_that_raises_fails_its_task_and_the_request() -> None:
    lean, store, _ = dispatcher()
    context = ServerCallContext()

    with pytest.raises(InternalError, match="asked to fail"):
        await lean.send(send("fail"), context)
    seen: list[Any] = []
    with pytest.raises(InternalError, match="asked to fail"):
        async for event in lean.stream(send("fail"), context):
            seen.append(event)

    stored = await store.get(seen[0].id, context)
    assert stored is not None and stored.status.state == TaskState.TASK_STATE_FAILED


async def test_history_length_applies_to_the_answer() -> None:
    lean, _, _ = dispatcher()

    task = await lean.send(send("echo x", history_length=0), ServerCallContext())

    assert isinstance(task, Task) and not task.history


async def test_follow_ups_and_background_requests_go_to_the_sdk_handler() -> None:
    store, executor = CountingStore(), ScriptExecutor()
    card = build_agent_card(
        namespace="ns", name="risk", inbox="chorus.ns.risk.inbox", http_url="http://x/"
    )
    lean = LeanDispatcher.for_handler(DefaultRequestHandler(executor, store, card), card)
    assert lean is not None and lean.executor is executor and lean.streaming

    assert lean.takes("SendMessage", send("echo"))
    assert lean.takes("SendStreamingMessage", send("echo"))
    assert not lean.takes("SendMessage", send("echo", return_immediately=True))
    follow_up = send("echo")
    follow_up.message.task_id = "t-1"
    assert not lean.takes("SendMessage", follow_up)
    assert LeanDispatcher.for_handler(object(), card) is None


async def test_a_message_sent_again_is_answered_from_its_first_task_not_run_again() -> None:
    """A caller that asks again after a crash sends the same ``messageId``: the second
    sending (here while the first runs, and once it ended; over both methods) gets the
    first task, and the executor ran once. Another sender's same id is a new task."""
    lean, store, _ = dispatcher()
    caller = ServerCallContext(state={"chorus.sender": "ns/caller"})
    first = send("stream 3")
    first.message.message_id = "call-1"

    running = asyncio.create_task(lean.send(first, caller))
    await asyncio.sleep(0)
    again = await lean.send(send_copy(first), caller)
    answer = await running
    streamed = [event async for event in lean.stream(send_copy(first), caller)]
    assert isinstance(answer, Task) and isinstance(again, Task)
    assert again.id == answer.id and answer_text(again) == answer_text(answer)
    assert [e.id for e in streamed if isinstance(e, Task)] == [answer.id]
    assert store.saved.count(TaskState.TASK_STATE_COMPLETED) == 1

    other = ServerCallContext(state={"chorus.sender": "ns/other"})
    theirs = await lean.send(send_copy(first), other)
    assert isinstance(theirs, Task) and theirs.id != answer.id
    assert store.saved.count(TaskState.TASK_STATE_COMPLETED) == 2


def send_copy(request: SendMessageRequest) -> SendMessageRequest:
    copied = SendMessageRequest()
    copied.CopyFrom(request)
    return copied
