"""The lean hot path: a new message runs the ``AgentExecutor`` directly, without SDK machinery.

a2a-sdk's ``DefaultRequestHandler`` gives every message an ``ActiveTask`` (a producer
task, a consumer task, two queues, a request lock), saves the task after every event
and opens telemetry spans on the way: about 2.8 ms per message on one core, more than
the Kafka round trip it serves. :class:`LeanDispatcher` keeps the
parts of that contract an agent sees, and drops the rest:

- the executor gets a real ``RequestContext`` and an ``EventQueue`` (:class:`RunQueue`)
  that applies each event to the task in place (status: the previous status message
  moves to the history; artifacts: replaced, or appended to with ``append``), and
  hands it to the streaming answer, if any;
- the task is saved to the task store when the executor first yields to the event loop
  after creating it (so a long task is accepted, and its request's offset committed,
  without waiting for its end) and once when the request ends: two ``.tasks`` records
  at most, usually one, instead of one per event;
- the executor raising fails the task and answers with the error, as the SDK does
  (``InternalError`` with the exception's text, an ``A2AError`` as it is);
- a ``CancelTask`` or ``SubscribeToTask`` for a task that is still running here is
  served by its :class:`LeanRun` (the SDK handler does not know it).

It takes only what it serves exactly like the SDK: ``SendMessage`` and
``SendStreamingMessage`` that start a new task (no ``taskId``), with no push
configuration and without ``returnImmediately``. Everything else (follow-ups to a
task, the other methods) goes to the ``DefaultRequestHandler``, which reads the same
task store. Concurrency: one event loop; a run's events are applied in the order the
executor enqueues them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import Event, EventQueue
from a2a.server.tasks import TaskStore
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
    Message,
    Part,
    Role,
    SendMessageRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import A2AError, InternalError, InvalidAgentResponseError
from a2a.utils.task import apply_history_length, validate_history_length

log = logging.getLogger(__name__)

TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
    }
)
INTERRUPTED = frozenset({TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED})
LEAN_METHODS = frozenset({"SendMessage", "SendStreamingMessage"})

_END = object()
"""Ends a listener's queue."""


def _copy(task: Task) -> Task:
    copied = Task()
    copied.CopyFrom(task)
    return copied


def _apply_artifact(task: Task, event: TaskArtifactUpdateEvent) -> None:
    """The SDK's ``append_artifact_to_task``, without its telemetry span."""
    artifact: Artifact = event.artifact
    for existing in task.artifacts:
        if existing.artifact_id == artifact.artifact_id:
            if event.append:
                existing.parts.extend(artifact.parts)
                existing.metadata.update(dict(artifact.metadata.items()))
            else:
                existing.CopyFrom(artifact)
            return
    if event.append:
        raise InvalidAgentResponseError(
            f"task {task.id}: append=True for artifact {artifact.artifact_id!r}, "
            "which was never sent"
        )
    task.artifacts.append(artifact)


class RunQueue(EventQueue):
    """The executor's event queue for one :class:`LeanRun`: each event is applied at once."""

    def __init__(self, run: LeanRun) -> None:
        self._run = run

    async def enqueue_event(self, event: Event) -> None:
        self._run.apply(event)


SENDER_STATE = "chorus.sender"
"""``ServerCallContext.state`` key of the request's ``chorus-sender`` (set by the server)."""


def task_id_for(message: Message, context: ServerCallContext) -> str | None:
    """The id of the task a new ``message`` makes: derived from its sender and
    ``messageId``, so the same message sent again names the same task (``None`` without a
    ``messageId``: the SDK makes one up)."""
    if not message.message_id:
        return None
    sender = str(context.state.get(SENDER_STATE, ""))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chorus:{sender}:{message.message_id}"))


class LeanRun:
    """One message being executed: its task as the events built it, and who listens."""

    def __init__(
        self, dispatcher: LeanDispatcher, params: SendMessageRequest, context: ServerCallContext
    ) -> None:
        self._dispatcher = dispatcher
        self.context = context
        self.request = RequestContext(
            call_context=context,
            request=params,
            task_id=task_id_for(params.message, context),
            context_id=params.message.context_id or None,
        )
        assert self.request.task_id is not None and self.request.context_id is not None
        self.task_id: str = self.request.task_id
        self.context_id: str = self.request.context_id
        self.message = params.message
        self.queue = RunQueue(self)
        self.task: Task | None = None
        self.answer: Message | None = None
        self.error: A2AError | None = None
        self.finished = False
        """The answer is complete: a message, a terminal or interrupted state, or an error."""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved once the executor returned and the task was saved."""
        self._answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listeners: list[asyncio.Queue[Any]] = []
        self._dirty = False
        self._armed = False
        self._closed = False
        self._saving: asyncio.Task[None] | None = None
        self._cancelling = False
        self._execution: asyncio.Task[None] | None = None

    # --- events ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Applies one event of the executor; raises ``InvalidAgentResponseError`` as the SDK."""
        if self.finished and not self._cancelling:
            raise InvalidAgentResponseError(
                f"task {self.task_id}: {type(event).__name__} after the answer was complete"
            )
        if isinstance(event, Message):
            if self.task is not None:
                raise InvalidAgentResponseError(
                    f"task {self.task_id}: a Message in task mode; "
                    "use TaskStatusUpdateEvent or TaskArtifactUpdateEvent"
                )
            self.answer = event
            self._publish(event)
            self._finish_answer()
            return
        if self.answer is not None:
            raise InvalidAgentResponseError(
                f"task {self.task_id}: {type(event).__name__} after a Message answer"
            )
        if isinstance(event, Task):
            if event.id != self.task_id:
                raise InternalError(message="Task ID mismatch in agent response")
            if self.task is not None:
                log.error("task %s already exists; ignoring its replacement", self.task_id)
                return
            task = _copy(event)
            self._created(task)
            self._publish(_copy(task))
        else:
            if self.task is None:
                if isinstance(event, TaskStatusUpdateEvent):
                    raise InvalidAgentResponseError(
                        f"task {self.task_id}: the agent should enqueue the Task before a "
                        "TaskStatusUpdateEvent"
                    )
                self._created(
                    Task(
                        id=self.task_id,
                        context_id=self.context_id,
                        status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                        history=[self.message],
                    )
                )
            assert self.task is not None
            if isinstance(event, TaskStatusUpdateEvent):
                if self.task.status.HasField("message"):
                    self.task.history.append(self.task.status.message)
                if event.metadata:
                    self.task.metadata.MergeFrom(event.metadata)
                self.task.status.CopyFrom(event.status)
            else:
                _apply_artifact(self.task, event)
            self._touch()
            self._publish(event)
        assert self.task is not None
        if self.task.status.state in TERMINAL or self.task.status.state in INTERRUPTED:
            self._finish_answer()

    def _created(self, task: Task) -> None:
        self.task = task
        self._touch()

    def _touch(self) -> None:
        """Marks the task changed. It is saved when the executor next yields to the event
        loop: a task that runs on is accepted (its input offset committed) and readable
        without waiting for its end; one that ends without yielding is saved once."""
        self._dirty = True
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_soon(self._checkpoint)

    def _checkpoint(self) -> None:
        self._armed = False
        if not self._closed and self._dirty:
            self._saving = asyncio.create_task(self._save_after(self._saving))

    async def _save_after(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous
        await self._save()

    async def _save(self) -> None:
        if self.task is None or not self._dirty:
            return
        self._dirty = False
        await self._dispatcher.store.save(_copy(self.task), self.context)

    def _publish(self, event: Any) -> None:
        for listener in self._listeners:
            listener.put_nowait(event)

    def _finish_answer(self) -> None:
        self.finished = True
        if not self._answered.done():
            self._answered.set_result(None)

    def listen(self) -> asyncio.Queue[Any]:
        """A queue of the run's next events, ended by an error or ``_END``."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._listeners.append(queue)
        return queue

    # --- execution ------------------------------------------------------------------------

    def start(self) -> None:
        self._execution = asyncio.create_task(self._execute(), name=f"lean:{self.task_id}")

    async def _execute(self) -> None:
        try:
            await self._dispatcher.executor.execute(self.request, self.queue)
        except asyncio.CancelledError:
            if not self._cancelling:
                self._fail(InternalError(message="the agent shut down before answering"))
                await self._close()
                raise
        except A2AError as error:
            self._fail(error)
        except Exception as exc:
            log.exception("task %s: the executor failed", self.task_id)
            self._fail(InternalError(message=str(exc)))
        await self._close()

    def _fail(self, error: A2AError) -> None:
        if self.answer is not None:
            return
        if self.task is None:
            self.task = Task(id=self.task_id, context_id=self.context_id, history=[self.message])
        if self.task.status.state not in TERMINAL:
            if self.task.status.HasField("message"):
                self.task.history.append(self.task.status.message)
            # the reason stays with the task: a caller that reads it later sees why
            reason = Message(
                message_id=f"{self.task_id}-failed",
                role=Role.ROLE_AGENT,
                task_id=self.task_id,
                context_id=self.context_id,
                parts=[Part(text=error.message)],
            )
            self.task.status.CopyFrom(TaskStatus(state=TaskState.TASK_STATE_FAILED, message=reason))
            self.task.status.timestamp.FromDatetime(datetime.now(UTC))
            self._dirty = True  # saved by _close
        self.error = error
        self._finish_answer()

    async def _close(self) -> None:
        """The executor returned: the answer is what it is; save the task, end the listeners."""
        self._closed = True
        try:
            if self._saving is not None:
                await self._saving
            await self._save()
        finally:
            self._finish_answer()
            self._publish(self.error if self.error is not None else _END)
            self._dispatcher.runs.pop(self.task_id, None)
            if not self.done.done():
                self.done.set_result(None)

    def stop(self) -> None:
        """Cancels the execution (the caller went away, or the agent shuts down)."""
        if self._execution is not None and not self._execution.done():
            self._execution.cancel()

    @property
    def started(self) -> bool:
        return self._execution is not None

    async def answered(self) -> None:
        """Returns once the answer is complete (the executor may still run)."""
        await asyncio.shield(self._answered)

    async def cancel(self, context: ServerCallContext) -> Task:
        """The SDK's cancel: the executor's ``cancel``, then its execution is stopped."""
        request = RequestContext(
            call_context=context,
            task_id=self.task_id,
            context_id=self.context_id,
            task=_copy(self.task) if self.task is not None else None,
        )
        self._cancelling = True
        try:
            await self._dispatcher.executor.cancel(request, self.queue)
        except Exception as exc:
            log.exception("task %s: the executor's cancel failed", self.task_id)
            self._fail(InternalError(message=str(exc)))
            raise
        finally:
            if self._execution is not None:
                self._execution.cancel()
        await asyncio.shield(self.done)
        if self.task is None or self.task.status.state not in TERMINAL:
            if self.task is None:
                self.task = Task(id=self.task_id, context_id=self.context_id)
            self.task.status.state = TaskState.TASK_STATE_CANCELED
            self._dirty = True
            await self._save()
        return _copy(self.task)


class LeanDispatcher:
    """Runs new messages on ``executor`` directly; see the module docstring.

    ``store`` is the task store the SDK handler reads (wrapped in an
    :class:`~chorus_agents.binding.requests.AcceptingTaskStore`, its saves accept the
    request). ``streaming`` is the AgentCard's streaming capability: without it,
    streaming requests go to the SDK handler, which refuses them.
    """

    def __init__(self, executor: AgentExecutor, store: TaskStore, *, streaming: bool) -> None:
        self.executor = executor
        self.store = store
        self.streaming = streaming
        self.runs: dict[str, LeanRun] = {}

    @classmethod
    def for_handler(cls, handler: Any, card: AgentCard | None) -> LeanDispatcher | None:
        """The dispatcher for an SDK ``DefaultRequestHandler`` serving ``card`` (the card
        the handler was given; the SDK keeps its own copy private); ``None`` for other
        handlers."""
        executor = getattr(handler, "agent_executor", None)
        store = getattr(handler, "task_store", None)
        if not isinstance(executor, AgentExecutor) or not isinstance(store, TaskStore):
            return None
        streaming = bool(card is not None and card.capabilities.streaming)
        return cls(executor, store, streaming=streaming)

    def takes(self, method: str, params: Any) -> bool:
        """Whether this request is served here (see the module docstring)."""
        if method not in LEAN_METHODS or not isinstance(params, SendMessageRequest):
            return False
        if method == "SendStreamingMessage" and not self.streaming:
            return False
        configuration = params.configuration
        return not (
            params.message.task_id
            or configuration.return_immediately
            or configuration.HasField("task_push_notification_config")
        )

    def running(self, task_id: str) -> LeanRun | None:
        """The run of ``task_id`` if it still executes here."""
        run = self.runs.get(task_id)
        return run if run is not None and not run.done.done() else None

    def _begin(self, params: SendMessageRequest, context: ServerCallContext) -> LeanRun:
        validate_history_length(params.configuration)
        run = LeanRun(self, params, context)
        self.runs[run.task_id] = run
        return run

    async def _sent_before(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> LeanRun | Task | None:
        """The run or the task this message made when it was sent before (same sender and
        ``messageId``: a caller that asks again after a restart), or ``None``."""
        task_id = task_id_for(params.message, context)
        if task_id is None:
            return None
        run = self.running(task_id)
        if run is not None:
            return run
        return await self.store.get(task_id, context)

    async def send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        """``SendMessage``: the message, or the task once terminal or interrupted.

        A message sent again gets the answer of its first sending, not a second run."""
        before = await self._sent_before(params, context)
        if isinstance(before, Task):
            return apply_history_length(_copy(before), params.configuration)
        if isinstance(before, LeanRun):
            await before.answered()
            if before.task is not None:
                return apply_history_length(_copy(before.task), params.configuration)
        run = self._begin(params, context)
        run.start()
        try:
            await run.answered()
        except asyncio.CancelledError:
            run.stop()
            raise
        if run.error is not None:
            raise run.error
        if run.answer is not None:
            return run.answer
        if run.task is None:
            raise InternalError(message="the agent ended without an answer")
        return apply_history_length(_copy(run.task), params.configuration)

    async def stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """``SendStreamingMessage``: every event, up to the last; then the error, if any.

        A message sent again gets its first sending's task (as it is, then its next
        events while it runs), not a second run."""
        before = await self._sent_before(params, context)
        if isinstance(before, Task):
            yield apply_history_length(_copy(before), params.configuration)
            return
        if isinstance(before, LeanRun):
            async for event in self.subscribe(before):
                yield event
            return
        run = self._begin(params, context)
        events = run.listen()
        run.start()
        try:
            while True:
                event = await events.get()
                if event is _END:
                    return
                if isinstance(event, A2AError):
                    raise event
                if isinstance(event, Task):
                    event = apply_history_length(event, params.configuration)
                yield event
        finally:
            if not run.finished:
                run.stop()

    async def subscribe(self, run: LeanRun) -> AsyncGenerator[Event, None]:
        """``SubscribeToTask`` for a running task: the task as it is, then its next events."""
        events = run.listen()
        if run.task is not None:
            yield _copy(run.task)
        while True:
            event = await events.get()
            if event is _END or isinstance(event, A2AError):
                return
            yield event

    async def aclose(self) -> None:
        """Stops every run (at shutdown) and waits until each saved its task."""
        runs = [run for run in self.runs.values() if run.started]
        for run in runs:
            run.stop()
        if runs:
            await asyncio.gather(*(run.done for run in runs), return_exceptions=True)
