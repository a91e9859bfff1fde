"""Serving one A2A request from the inbox with a2a-sdk's ``RequestHandler``.

:class:`~.server.KafkaA2AServer` (the loop) decodes an inbox record and hands the request
to :class:`RequestServer`, which runs it on the SDK's handler (new messages on the lean
path, :mod:`.dispatch`) and writes every answer record to the outbox (:class:`_Reply`).

A request is *accepted* once it is durable without its input record: its task has been
written to the task store (through :class:`AcceptingTaskStore`), or its first answer
record is queued, or it ended. Then the loop may commit its offset while the task runs on.

Replicas share their tasks (a :class:`SharedTasks` store, the host's
:class:`~chorus_agents.tasks.KafkaTaskStore`): a request naming a task this replica
does not hold (``GetTask``, ``CancelTask``, ``SubscribeToTask``, a follow-up message)
and ``ListTasks`` first wait until the store has read every write committed so far
(the read-your-writes barrier). When another replica ends a task that runs here (it
served the ``CancelTask``), the execution here is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

from a2a.extensions.common import get_requested_extensions
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes.common import serialize_list_tasks_response
from a2a.server.tasks import TaskStore
from a2a.types.a2a_pb2 import (
    AgentCard,
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageResponse,
    Task,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import A2AError, InternalError, TaskNotFoundError
from a2a.utils.proto_utils import to_stream_response
from a2a.utils.task import apply_history_length, validate_history_length

from chorus_agents.binding import codec
from chorus_agents.binding.codec import A2ARequest
from chorus_agents.binding.dispatch import SENDER_STATE, LeanDispatcher
from chorus_agents.binding.inputs import InputRecord
from chorus_agents.binding.outbox import Outbox
from chorus_agents.proto import to_dict

log = logging.getLogger(__name__)

ACCEPTED = "chorus.accepted"
"""``ServerCallContext.state`` key: a future resolved once the request is accepted."""

FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)
"""States after which a stream has nothing more to say for this request."""

NAMED_TASK = frozenset({"GetTask", "CancelTask", "SubscribeToTask"})
"""Methods whose ``params.id`` names a task."""


class SharedTasks(Protocol):
    """A task store the agent's replicas share (:class:`~chorus_agents.tasks.KafkaTaskStore`)."""

    on_ended: Callable[[Task, ServerCallContext], None] | None

    def known(self, task_id: str) -> bool:
        """Whether this replica holds the task."""
        ...

    async def caught_up(self, timeout: float | None = None) -> bool:
        """Waits until every write committed so far is held; ``False`` after the timeout."""
        ...


class Executions(Protocol):
    """The executions running in this process, by task id."""

    def running(self, task_id: str) -> bool:
        """Whether ``task_id`` executes here now."""
        ...

    async def stop(self, task_id: str) -> bool:
        """Cancels ``task_id``'s execution here (the executor's ``cancel``)."""
        ...


class AcceptingTaskStore(TaskStore):
    """A task store that tells the server loop when a request's task is durable.

    Wrap the store given to the request handler with it: a save made for a request
    served from Kafka resolves that request's :data:`ACCEPTED` future, so the loop can
    commit its input offset without waiting for the task to finish.
    """

    def __init__(self, store: TaskStore) -> None:
        self.store = store

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self.store.save(task, context)
        accept(context)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self.store.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self.store.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.store.delete(task_id, context)


def accept(context: ServerCallContext) -> None:
    """Marks the request of ``context`` accepted (no-op for requests not from Kafka)."""
    future = context.state.get(ACCEPTED)
    if isinstance(future, asyncio.Future) and not future.done():
        future.set_result(None)


class RequestServer:
    """Runs inbox requests on ``handler``; see the module docstring."""

    def __init__(
        self,
        handler: RequestHandler,
        outbox: Outbox,
        *,
        agent: str,
        lean: bool = True,
        card: AgentCard | None = None,
        tasks: SharedTasks | None = None,
        executions: Executions | None = None,
    ) -> None:
        self.handler = handler
        self.outbox = outbox
        self.agent = agent
        """``<namespace>/<agent>``: the ``chorus-sender`` of answers."""
        self.lean = LeanDispatcher.for_handler(handler, card) if lean else None
        """New messages run here, not through ``handler`` (see :mod:`.dispatch`)."""
        self.tasks = tasks
        """The replicas' shared task store: the barrier, and tasks ended elsewhere."""
        self.executions = executions
        """What executes here (the host's ``ObservedExecutor``): stopped when another
        replica ends its task."""
        if tasks is not None:
            tasks.on_ended = self._ended_elsewhere
        self._stopping: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Stops what runs on the lean path (at shutdown) and waits for its last saves."""
        if self.lean is not None:
            await self.lean.aclose()

    async def serve(self, request: A2ARequest, record: InputRecord) -> None:
        """Serves ``request`` (the work of its inbox ``record``): answers go to the outbox;
        ``record.finished`` resolves once the request is accepted."""
        accepted = record.finished
        reply = _Reply(self, request)
        try:
            context = ServerCallContext(
                state={
                    # hook: the request's headers as the HTTP gateway gives them (trace
                    # context, chorus-causation-id), for the runtime's spans and audit
                    "headers": {
                        **request.service_parameters,
                        **request.trace,
                        codec.A2A_VERSION: request.a2a_version,
                    },
                    "method": request.method,
                    "request_id": request.route.request_id,
                    ACCEPTED: accepted,
                    SENDER_STATE: request.sender,
                },
                requested_extensions=get_requested_extensions(
                    [request.service_parameters.get("a2a-extensions", "")]
                ),
            )
            if self.tasks is not None:
                await self._see(request)
            if request.streaming:
                await self._serve_stream(request, context, reply, accepted)
            else:
                await self._serve_unary(request, context, reply)
        except asyncio.CancelledError:
            if not record.failed:  # a failed record's caller has its answer
                reply.send(
                    end=True, error=InternalError(message="the agent shut down before answering")
                )
            raise

    async def _see(self, request: A2ARequest) -> None:
        """The read-your-writes barrier: a request about a task this replica does not hold
        (or ``ListTasks``) first waits until the task store has read what every replica
        committed. New messages (the hot path) never wait."""
        assert self.tasks is not None
        method, params = request.method, request.params
        if method == "ListTasks":
            await self.tasks.caught_up()
            return
        if method in NAMED_TASK:
            task_id = getattr(params, "id", "")
        elif method in ("SendMessage", "SendStreamingMessage"):
            task_id = params.message.task_id
        else:
            return
        if not task_id or self.tasks.known(task_id):
            return
        if self.lean is not None and self.lean.running(task_id) is not None:
            return
        await self.tasks.caught_up()

    def _ended_elsewhere(self, task: Task, context: ServerCallContext) -> None:
        """Another replica ended ``task`` (it served a ``CancelTask``): stop it if it runs here."""
        run = self.lean.running(task.id) if self.lean is not None else None
        executions = self.executions
        active = run is None and executions is not None and executions.running(task.id)
        if run is None and not active:
            return
        log.info(
            "agent %s: task %s was ended by another replica (%s); cancelling it here",
            self.agent,
            task.id,
            TaskState.Name(task.status.state),
        )

        async def stop() -> None:
            try:
                if run is not None:
                    await run.cancel(run.context)
                elif executions is not None:
                    await executions.stop(task.id)
            except Exception as exc:  # the task has ended anyway; its state stands
                log.warning("agent %s: cancelling task %s: %s", self.agent, task.id, exc)

        stopping = asyncio.create_task(stop(), name=f"ended-elsewhere:{task.id}")
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)

    async def _serve_unary(
        self, request: A2ARequest, context: ServerCallContext, reply: _Reply
    ) -> None:
        try:
            result = await self._call(request, context)
        except A2AError as error:
            reply.send(end=True, error=error)
        except Exception as exc:
            log.exception("agent %s: %s failed", self.agent, request.method)
            reply.send(end=True, error=InternalError(message=str(exc)))
        else:
            reply.send(end=True, result=result)

    async def _serve_stream(
        self,
        request: A2ARequest,
        context: ServerCallContext,
        reply: _Reply,
        accepted: asyncio.Future[None],
    ) -> None:
        stream = self._open_stream(request, context)
        try:
            async for event in stream:
                if reply.ended:
                    log.warning(
                        "agent %s: %s event after the answer ended, dropped: %s",
                        self.agent,
                        request.method,
                        type(event).__name__,
                    )
                    continue
                reply.send(end=_is_final(event), result=to_dict(to_stream_response(event)))
                if not accepted.done():
                    accepted.set_result(None)
        except A2AError as error:
            reply.send(end=True, error=error)
        except Exception as exc:
            log.exception("agent %s: %s failed", self.agent, request.method)
            reply.send(end=True, error=InternalError(message=str(exc)))
        finally:
            await stream.aclose()
        if not reply.ended:
            await self._end_stream(request, context, reply)

    async def _end_stream(
        self, request: A2ARequest, context: ServerCallContext, reply: _Reply
    ) -> None:
        """Ends a stream the handler closed without a final event: with the task as it is."""
        params: Any = request.params
        task_id = params.id if request.method == "SubscribeToTask" else params.message.task_id
        task = None
        if task_id:
            with contextlib.suppress(A2AError):
                task = await self.handler.on_get_task(GetTaskRequest(id=task_id), context)
        if task is None:
            reply.send(end=True, error=InternalError(message="the stream ended without an answer"))
        else:
            reply.send(end=True, result=to_dict(to_stream_response(task)))

    def _open_stream(
        self, request: A2ARequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        params: Any = request.params
        lean = self.lean
        if request.method == "SendStreamingMessage":
            if lean is not None and lean.takes(request.method, params):
                return lean.stream(params, context)
            return self.handler.on_message_send_stream(params, context)
        run = lean.running(params.id) if lean is not None else None
        if lean is not None and run is not None:
            return lean.subscribe(run)
        return self.handler.on_subscribe_to_task(params, context)

    async def _call(self, request: A2ARequest, context: ServerCallContext) -> Any:
        """Runs a unary method; returns its JSON result as a2a-sdk's JSON-RPC server does."""
        handler, params, method = self.handler, request.params, request.method
        p: Any = params
        lean = self.lean
        if lean is not None:
            if method == "SendMessage" and lean.takes(method, p):
                outcome = await lean.send(p, context)
                if isinstance(outcome, Task):
                    return to_dict(SendMessageResponse(task=outcome))
                return to_dict(SendMessageResponse(message=outcome))
            run = lean.running(p.id) if method in ("GetTask", "CancelTask") else None
            if run is not None and method == "CancelTask":
                return to_dict(await run.cancel(context))
            if run is not None and run.task is not None:
                validate_history_length(p)
                return to_dict(apply_history_length(run.task, p))
        if method == "SendMessage":
            outcome = await handler.on_message_send(p, context)
            if isinstance(outcome, Task):
                return to_dict(SendMessageResponse(task=outcome))
            return to_dict(SendMessageResponse(message=outcome))
        if method in ("GetTask", "CancelTask"):
            task = await (
                handler.on_get_task(p, context)
                if method == "GetTask"
                else handler.on_cancel_task(p, context)
            )
            if task is None:
                raise TaskNotFoundError
            return to_dict(task)
        if method == "ListTasks":
            return serialize_list_tasks_response(
                await handler.on_list_tasks(p, context), p.include_artifacts
            )
        if method == "CreateTaskPushNotificationConfig":
            return to_dict(await handler.on_create_task_push_notification_config(p, context))
        if method == "GetTaskPushNotificationConfig":
            return to_dict(await handler.on_get_task_push_notification_config(p, context))
        if method == "ListTaskPushNotificationConfigs":
            return to_dict(await handler.on_list_task_push_notification_configs(p, context))
        if method == "DeleteTaskPushNotificationConfig":
            await handler.on_delete_task_push_notification_config(p, context)
            return None
        if method == "GetExtendedAgentCard":
            return to_dict(await handler.on_get_extended_agent_card(p, context))
        raise InternalError(
            message=f"method {method} has no dispatcher"
        )  # codec.METHODS and this disagree


def _is_final(event: Event) -> bool:
    if isinstance(event, Message):
        return True
    if isinstance(event, Task | TaskStatusUpdateEvent):
        return event.status.state in FINAL_STATES
    return False


class _Reply:
    """The answer to one request, record by record; nothing is sent after its end."""

    def __init__(self, server: RequestServer, request: A2ARequest) -> None:
        self._server = server
        self._request = request
        self.seq = 0
        self.ended = False

    def send(self, *, end: bool, result: Any = None, error: A2AError | None = None) -> None:
        if self.ended:
            return
        self._server.outbox.append(
            codec.encode_response(
                self._request.route,
                sender=self._server.agent,
                seq=self.seq,
                end=end,
                result=result,
                error=error,
                trace=self._request.trace,
            )
        )
        self.seq += 1
        self.ended = end
