"""The server side of the binding: the agent's inbox, served by an a2a-sdk ``RequestHandler``.

The loop itself (polling, per-key lanes, the commit cycle, the invariant that a record's
outputs commit with the mark that it is done) is :mod:`.pipeline`'s; this module says
what a record needs.

An A2A request is finished once it is accepted: durable without its input record (its
task has been written to the task store, through :class:`AcceptingTaskStore`), or its
first answer record is queued, or it ended. Long tasks therefore do not hold their
partition back: their later events are committed by later commits, so a streamed answer
reaches the caller as it is produced, and a ``CancelTask`` is read while the task runs.
Records of one key (a conversation) start in order, each after the one before it was
accepted; the SDK then runs the messages of one task one at a time.

Records of the subscribed domain topics go to ``on_event`` (a code-defined agent's
:meth:`~chorus_agents.handler.Handler.on_event`), retried with backoff up to
``max_attempts`` times, then dead-lettered; one is finished once handled, so what the
handler publishes is committed with its offset. The writing itself (transactions, or
produce-flush-commit for at-least-once) is :class:`~.writer.OutputWriter`'s.

Replicas share their tasks (a :class:`SharedTasks` store, the host's
:class:`~chorus_agents.tasks.KafkaTaskStore`): a request naming a task this replica
does not hold (``GetTask``, ``CancelTask``, ``SubscribeToTask``, a follow-up message)
and ``ListTasks`` first wait until the store has read every write committed so far
(the read-your-writes barrier). When another replica ends a task that runs here (it
served the ``CancelTask``), the execution here is cancelled.

Poison (a record that is no valid A2A request, see :mod:`.codec`) goes to the
dead-letter topic with ``chorus-error-*`` headers, and when the record said where to
answer, the caller gets the matching JSON-RPC error, in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
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
from chorus_api.topics import REPLIES_PATTERN
from confluent_kafka import KafkaError, KafkaException

from chorus_agents.binding import codec
from chorus_agents.binding.codec import A2ARequest, OutRecord, PoisonRecord
from chorus_agents.binding.dispatch import SENDER_STATE, LeanDispatcher
from chorus_agents.binding.inputs import InputRecord, PipelineSettings, Work
from chorus_agents.binding.outbox import Outbox
from chorus_agents.binding.pipeline import Pipeline
from chorus_agents.binding.writer import AUTHORIZATION_ERRORS, OutputWriter, TransactionFailed
from chorus_agents.handler import DomainEvent, domain_event
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


@dataclass(frozen=True)
class ServerSettings:
    """What the loop needs besides its handler: names, limits and timings."""

    inbox: str
    """The topic of A2A requests."""
    agent: str
    """``<namespace>/<agent>``: the ``chorus-sender`` of answers, the dead letters' agent."""
    group_id: str
    """The agent's consumer group."""
    transactional_id: str | None
    """This replica's transactional id; ``None`` for at-least-once (no transactions)."""
    dead_letter: str | None
    """Where poison goes; ``None`` logs and drops it."""
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    """The loop's limits and timings: ``maxInFlight``, ``commitInterval``, ``handlerTimeout``."""
    max_record_bytes: int = 1024 * 1024
    commit_timeout: float = 30.0
    shutdown_grace: float = 10.0
    """Seconds running requests get to finish at shutdown."""
    auth_backoff: float = 5.0
    """Seconds the loop pauses after Kafka refused it access (never a hot retry loop)."""
    subscribe: tuple[str, ...] = ()
    """Domain event topics, handed to ``on_event``."""
    max_attempts: int = 3
    """Tries of ``on_event`` per record before it is dead-lettered."""
    retry_backoff: float = 0.2
    """Seconds before the first retry of ``on_event``; doubled each time, at most 10."""
    reply_to_pattern: str | None = REPLIES_PATTERN
    """Answers go only to topics matching it: a topic the agent may not write would fail
    its whole transaction. ``None`` accepts any topic name."""


@dataclass
class ServerStats:
    """Counters for metrics and tests."""

    records: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    poison: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    produced: int = 0
    buffered: int = 0
    """Input records taken and not finished (at the last commit)."""
    pauses: int = 0
    """Times the loop paused for lack of room."""
    last_kafka_error: str | None = None
    authorization_failed: bool = False


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


class KafkaA2AServer:
    """Serves A2A requests from the inbox with ``handler``; see the module docstring.

    ``kafka_config`` holds the librdkafka connection settings (bootstrap, security);
    the server adds what its consumer and producer need.
    """

    def __init__(
        self,
        handler: RequestHandler,
        outbox: Outbox,
        settings: ServerSettings,
        kafka_config: Mapping[str, Any],
        *,
        on_event: Callable[[DomainEvent], Awaitable[None]] | None = None,
        lean: bool = True,
        card: AgentCard | None = None,
        tasks: SharedTasks | None = None,
        executions: Executions | None = None,
    ) -> None:
        if settings.subscribe and on_event is None:
            raise ValueError(
                f"agent {settings.agent}: subscribes to {settings.subscribe} but has no on_event"
            )
        self.handler = handler
        self.lean = LeanDispatcher.for_handler(handler, card) if lean else None
        """New messages run here, not through ``handler`` (see :mod:`.dispatch`)."""
        self.on_event = on_event
        self.tasks = tasks
        """The replicas' shared task store: the barrier, and tasks ended elsewhere."""
        self.executions = executions
        """What executes here (the host's ``ObservedExecutor``): stopped when another
        replica ends its task."""
        if tasks is not None:
            tasks.on_ended = self._ended_elsewhere
        self._stopping: set[asyncio.Task[None]] = set()
        self.outbox = outbox
        self.settings = settings
        self.stats = ServerStats()
        self.writer = OutputWriter(
            kafka_config,
            agent=settings.agent,
            transactional_id=settings.transactional_id,
            max_record_bytes=settings.max_record_bytes,
            commit_timeout=settings.commit_timeout,
        )
        self.pipeline = Pipeline(
            {
                **kafka_config,
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": "cooperative-sticky",
            },
            [settings.inbox, *settings.subscribe],
            self.writer,
            outbox,
            settings.pipeline,
            take=self._take,
            refused=self._refused,
            kafka_error=self._kafka_error,
        )
        self._started = asyncio.Event()
        self._stopped = False
        self._logged: dict[str, float] = {}

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Started, not stopped, and Kafka is not refusing access."""
        return self._started.is_set() and not self._stopped and not self.stats.authorization_failed

    @property
    def assigned(self) -> bool:  # hook: readiness (chorus_agents.health) needs the assignment
        """The consumer holds at least one partition of the inbox or a subscribed topic."""
        return bool(self.pipeline.partitions)

    async def wait_started(self) -> None:
        """Returns once the loop polls its inbox."""
        await self._started.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Serves until ``stop`` is set, then lets running work finish and commits."""
        await self.writer.open()
        self.pipeline.open()
        committer = asyncio.create_task(self._commit_every(stop), name="commit")
        try:
            self._started.set()
            while not stop.is_set() and not committer.done():
                taken = await self.pipeline.poll_once()
                if taken:
                    self.stats.authorization_failed = False
            await committer  # raises what stopped it; returns once stop is set
            await self.pipeline.finish_all(self.settings.shutdown_grace)
            if self.lean is not None:
                await self.lean.aclose()
            await self._commit()
        finally:
            self._stopped = True
            if not committer.done():
                await asyncio.wait([committer])
            await self.pipeline.close()
            await self.writer.close()

    async def _commit_every(self, stop: asyncio.Event) -> None:
        """The commit cycle: never cancelled mid-transaction, it ends when ``stop`` is set."""
        interval = self.settings.pipeline.commit_interval
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            await self._commit()

    async def _commit(self) -> None:
        try:
            await self.pipeline.commit()
        except TransactionFailed as failed:
            self.stats.authorization_failed |= failed.authorization
            raise
        self.stats.transactions = self.writer.transactions
        self.stats.produced = self.writer.produced
        self.stats.buffered = self.pipeline.buffered
        self.stats.pauses = self.pipeline.paused_times

    # --- taking records -------------------------------------------------------------------

    def _take(self, record: InputRecord) -> Work | None:
        """Decodes one record: its work, or ``None`` for poison (dead-lettered here)."""
        message, topic = record.message, record.topic
        key, value, headers = record.key, message.value(), message.headers()
        self.stats.records += 1
        if topic != self.settings.inbox:
            event = domain_event(
                topic, key, value, headers, partition=record.partition, offset=record.offset
            )
            return partial(self._handle_event, event)
        try:
            request = codec.decode_request(
                value, headers, key=key, max_bytes=self.settings.max_record_bytes
            )
            pattern = self.settings.reply_to_pattern
            if pattern is not None and re.fullmatch(pattern, request.route.reply_to) is None:
                raise codec.InvalidHeader(
                    f"{codec.REPLY_TO} {request.route.reply_to!r} is not a replies topic "
                    "(chorus.<namespace>.a2a.<agent>.replies)"
                )
        except PoisonRecord as poison:
            self._poison(poison, record)
            return None
        self.stats.requests[request.method] += 1
        return partial(self._serve, request)

    def _refused(self, record: InputRecord, reason: str, why: str) -> list[OutRecord]:
        """What a record that failed as a whole leaves: its dead letter, and for a request
        that said where to answer, the error its caller gets."""
        message = record.message
        outputs = self._dead_letter(record, reason, why)
        if record.topic == self.settings.inbox:
            with contextlib.suppress(PoisonRecord):
                request = codec.decode_request(
                    message.value(),
                    message.headers(),
                    key=record.key,
                    max_bytes=len(message.value() or b""),
                )
                outputs.append(
                    codec.encode_response(
                        request.route,
                        sender=self.settings.agent,
                        seq=0,
                        end=True,
                        error=InternalError(message=f"{reason}: {why}"),
                    )
                )
        return outputs

    async def _handle_event(self, event: DomainEvent, record: InputRecord) -> None:
        """Runs ``on_event``, retrying with backoff; dead-letters the record after the last try.

        The record is finished once this returns, so what the handler publishes is
        committed with it. A failed try's outputs are dropped before the next.
        """
        assert self.on_event is not None
        assert record.scope is not None
        self.stats.requests[f"event:{event.topic}"] += 1
        delay = self.settings.retry_backoff
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                await self.on_event(event)
                return
            except Exception as exc:
                record.scope.records.clear()
                log.warning(
                    "agent %s: event %s[%d]@%d failed (attempt %d of %d): %s",
                    self.settings.agent,
                    event.topic,
                    event.partition,
                    event.offset,
                    attempt,
                    self.settings.max_attempts,
                    exc,
                )
                if attempt == self.settings.max_attempts:
                    why = f"{self.settings.max_attempts} attempts; last: {exc!r}"
                    self.outbox.extend(self._dead_letter(record, "handler-failed", why))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _dead_letter(self, record: InputRecord, reason: str, why: str) -> list[OutRecord]:
        """The record, unchanged, for the dead-letter topic with the reason (none when the
        agent has no dead-letter topic: it is counted and logged only)."""
        self.stats.poison[reason] += 1
        if self.settings.dead_letter is None:
            return []
        message = record.message
        return [
            codec.dead_letter_record(
                self.settings.dead_letter,
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=message.value(),
                headers=message.headers(),
                reason=reason,
                message=why,
                agent=self.settings.agent,
            )
        ]

    def _poison(self, poison: PoisonRecord, record: InputRecord) -> None:
        log.warning(
            "agent %s: poison record %s (%s): %s",
            self.settings.agent,
            record.where,
            poison.reason,
            poison.message,
        )
        self.outbox.extend(self._dead_letter(record, poison.reason, poison.message))
        if poison.route is not None:
            self.outbox.append(
                codec.encode_response(
                    poison.route,
                    sender=self.settings.agent,
                    seq=0,
                    end=True,
                    error=poison.a2a_error(),
                )
            )

    # --- serving one request --------------------------------------------------------------

    async def _serve(self, request: A2ARequest, record: InputRecord) -> None:
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
            self.settings.agent,
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
                log.warning("agent %s: cancelling task %s: %s", self.settings.agent, task.id, exc)

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
            log.exception("agent %s: %s failed", self.settings.agent, request.method)
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
                        self.settings.agent,
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
            log.exception("agent %s: %s failed", self.settings.agent, request.method)
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

    # --- Kafka ------------------------------------------------------------------------------

    async def _kafka_error(self, error: KafkaError) -> None:
        self.stats.last_kafka_error = str(error)
        if error.code() in AUTHORIZATION_ERRORS:
            if not self.stats.authorization_failed:
                log.error(
                    "agent %s: Kafka refused access (%s): check the KafkaUser ACLs: %s, group %s%s",
                    self.settings.agent,
                    error.str(),
                    self.settings.inbox,
                    self.settings.group_id,
                    f", transactional id {self.settings.transactional_id}"
                    if self.settings.transactional_id
                    else "",
                )
            self.stats.authorization_failed = True
            await asyncio.sleep(self.settings.auth_backoff)
        elif error.fatal():
            raise KafkaException(error)
        else:
            # Repeated errors (a subscribed topic that does not exist yet) are logged once a
            # minute and slow the loop down, instead of flooding the log every poll.
            now, text = time.monotonic(), error.str()
            if now - self._logged.get(text, -60.0) >= 60.0:
                self._logged[text] = now
                log.warning("agent %s: Kafka: %s", self.settings.agent, text)
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                await asyncio.sleep(1.0)


def _is_final(event: Event) -> bool:
    if isinstance(event, Message):
        return True
    if isinstance(event, Task | TaskStatusUpdateEvent):
        return event.status.state in FINAL_STATES
    return False


class _Reply:
    """The answer to one request, record by record; nothing is sent after its end."""

    def __init__(self, server: KafkaA2AServer, request: A2ARequest) -> None:
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
                sender=self._server.settings.agent,
                seq=self.seq,
                end=end,
                result=result,
                error=error,
                trace=self._request.trace,
            )
        )
        self.seq += 1
        self.ended = end
