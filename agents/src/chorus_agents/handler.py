"""Code-defined agents: a :class:`Handler` reacts to A2A messages and to domain events.

A handler is the agent's logic, written against two small types and nothing of A2A's
task machinery::

    class RiskAgent(Handler):
        async def on_message(self, message: Incoming, ctx: Context) -> Reply:
            score = assess(message.text)
            ctx.publish("trading.decisions", {"score": score}, key=message.context_id)
            return Reply(text=f"risk {score}")

        async def on_event(self, event: DomainEvent, ctx: Context) -> None:
            ...

:class:`HandlerExecutor` runs a handler under a2a-sdk's ``AgentExecutor`` contract (a
task: submitted, working, the reply's artifact, completed; ``failed`` when the handler
raises), and the server loop calls :meth:`Handler.on_event` for every record of the
topics the agent subscribes to. What a handler publishes is written in the same Kafka
transaction as the offset of the input that caused it.

Contract:

- ``on_message`` runs once per A2A message; concurrent calls are for different tasks.
  Raising fails the task (the exception's text is the failure message).
- ``on_event`` runs at least once per record, in order per key. Raising retries it up to
  ``delivery.maxAttempts`` times; then the record goes to the dead-letter topic.
  Return normally only when the event is fully handled.

Tools: ``await ctx.tools.call("exchange", "place_order", {...})`` goes through the agent's
:class:`~chorus_agents.tools.ToolGateway` (the allow-list, timeout, retries, circuit
breaker, audit and metrics of the instructed agent's calls). Each call carries an
idempotency key; unless the handler passes its own, it is ``<handling>/<n>``: the
handling is the task id for a message and ``<topic>/<partition>/<offset>`` for an
event, ``n`` counts the handling's tool calls from 1. A redelivered event, or a retried
``on_event``, thus repeats the keys of its first run as long as it makes the same calls
in the same order; a handler whose calls depend on what changed in between passes its
own key (say, derived from the event's id).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers import get_message_text, new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Part, TaskState
from a2a.utils.errors import InternalError
from opentelemetry.trace import SpanKind

from chorus_agents import tracing
from chorus_agents.audit import CAUSATION_HEADER, AuditLog, AuditSink
from chorus_agents.binding.codec import OutRecord, header_map
from chorus_agents.binding.dispatch import SENDER_STATE
from chorus_agents.binding.outbox import Outbox
from chorus_agents.metrics import AgentMetrics
from chorus_agents.models.base import ModelProvider
from chorus_agents.tools import McpToolGateway, ToolGateway, ToolInfo, ToolResult


class _NoAudit:
    """The audit sink of a context built without one (unit tests): records nothing."""

    def record(self, kind: str, **fields: Any) -> str:
        return ""


class HandlerError(RuntimeError):
    """A handler cannot be loaded, or broke the rules of its context."""


@dataclass(frozen=True)
class Incoming:
    """An A2A message to the agent, as a handler sees it."""

    text: str
    """The message's text parts, joined by newlines."""
    task_id: str
    context_id: str
    sender: str
    """``<namespace>/<agent>`` of the caller over Kafka, ``""`` over HTTP."""
    data: tuple[Any, ...] = ()
    """The message's data parts (JSON values)."""


@dataclass(frozen=True)
class Reply:
    """What a handler answers: text and/or data, as the task's artifact."""

    text: str | None = None
    data: Any = None
    name: str = "answer"


@dataclass(frozen=True)
class DomainEvent:
    """A record of a topic the agent subscribes to."""

    topic: str
    key: str | None
    value: Any
    """The value parsed as JSON, or the raw bytes when it is not JSON."""
    headers: Mapping[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = 0


class _Handling:
    """The handling a tool call belongs to: its base key and how many calls it made."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.calls = 0
        self.asks = 0

    def next_key(self) -> str:
        self.calls += 1
        return f"{self.base}/{self.calls}"

    def next_ask(self) -> str:
        self.asks += 1
        return f"{self.base}/ask/{self.asks}"


_handling: ContextVar[_Handling | None] = ContextVar("chorus_handling", default=None)


def next_ask_key() -> str | None:
    """The key of the next call to another agent in the current handling: the input's
    key and the call's ordinal (``None`` outside a handling). The same input handled
    again (after a crash) makes the same keys in the same order."""
    handling = _handling.get()
    return handling.next_ask() if handling is not None else None


@contextlib.contextmanager
def tool_scope(base: str) -> Iterator[None]:
    """Tool calls made inside get the idempotency keys ``<base>/1``, ``<base>/2``, ...

    The runtime opens one per handling (``base`` = the task id, or the event's
    ``<topic>/<partition>/<offset>``); an asyncio task started inside inherits it.
    """
    token = _handling.set(_Handling(base))
    try:
        yield
    finally:
        _handling.reset(token)


class HandlerTools(ToolGateway):
    """The agent's tool gateway as a handler sees it: the idempotency key is optional.

    Every call goes through ``gateway`` (allow-list, timeout, retries, breaker, audit);
    without an explicit ``idempotency_key`` the key is the next one of the current
    handling (see :func:`tool_scope`). Outside a handling a key must be given.
    """

    def __init__(self, gateway: ToolGateway, *, agent: str) -> None:
        self.gateway = gateway
        self.agent = agent

    async def list_tools(self) -> tuple[ToolInfo, ...]:
        return await self.gateway.list_tools()

    async def call(
        self,
        tool: str,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> ToolResult:
        """Calls ``name`` of the Tool ``tool``; see :meth:`ToolGateway.call` for the outcomes."""
        if idempotency_key is None:
            handling = _handling.get()
            if handling is None:
                raise HandlerError(
                    f"agent {self.agent}: a tool call outside a message or event "
                    f"({tool}/{name}) needs an explicit idempotency_key"
                )
            idempotency_key = handling.next_key()
        return await self.gateway.call(
            tool, name, dict(arguments or {}), idempotency_key=idempotency_key
        )

    async def aclose(self) -> None:
        await self.gateway.aclose()


class Context:
    """What a handler may do besides computing its answer: publish, call agents and tools.

    Publishing is allowed to the agent's declared ``publish`` topics only; records are
    queued in the outbox and committed with the input that caused them.
    """

    def __init__(
        self,
        *,
        agent: str,
        outbox: Outbox,
        publish_topics: Collection[str],
        agents: Any = None,
        audit: AuditSink | None = None,
        tools: ToolGateway | None = None,
        model: ModelProvider | None = None,
    ) -> None:
        self.agent = agent
        self.model = model
        """The model the Agent's spec names (``model``), built by the runtime, or ``None``
        when the spec has none: ``await ctx.model.complete(ModelRequest(...))``."""
        self.agents = agents
        """An :class:`~chorus_agents.calls.AgentCaller`: ``await ctx.agents.ask("x", "...")``."""
        self.audit: AuditSink = audit if audit is not None else _NoAudit()
        gateway = tools if tools is not None else McpToolGateway((), agent=agent, audit=audit)
        self.tools: HandlerTools = (
            gateway if isinstance(gateway, HandlerTools) else HandlerTools(gateway, agent=agent)
        )
        """The agent's MCP tools: ``await ctx.tools.call("exchange", "get_quote", {...})``;
        without tools configured every call is refused (and audited)."""
        """Where decisions go: ``ctx.audit.record("decision", action="buy", ...)``; the
        record is caused by the message or event being handled, and committed with it."""
        self._outbox = outbox
        self._publish = frozenset(publish_topics)

    def publish(self, topic: str, value: Any, *, key: str | None = None) -> None:
        """Writes ``value`` (JSON) to ``topic``, one of the agent's publish topics."""
        if topic not in self._publish:
            allowed = ", ".join(sorted(self._publish)) or "none"
            raise HandlerError(
                f"agent {self.agent}: may not publish to {topic} (its publish topics: {allowed})"
            )
        # The published record names its audit record as the cause of whatever a
        # subscriber does with it, so `chorus trace` follows chains through domain topics.
        published = self.audit.record("event.published", topic=topic, key=key)
        headers: tuple[tuple[str, bytes], ...] = (("chorus-sender", self.agent.encode("utf-8")),)
        if isinstance(published, str):
            headers += ((CAUSATION_HEADER, published.encode("utf-8")),)
        self._outbox.append(
            OutRecord(
                topic=topic,
                key=key.encode("utf-8") if key is not None else None,
                value=json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                headers=headers,
            )
        )


class Handler:
    """A code-defined agent; override what it reacts to (see the module docstring)."""

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        """Answers an A2A message; by default the agent takes no messages."""
        raise HandlerError(f"agent {ctx.agent} does not take messages")

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        """Handles a record of a subscribed topic; by default it is ignored."""


class HandlerExecutor(AgentExecutor):
    """Runs a :class:`Handler` under a2a-sdk's ``AgentExecutor`` contract."""

    def __init__(self, handler: Handler, context: Context) -> None:
        self.handler = handler
        self.context = context

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id is None or context.context_id is None or context.message is None:
            raise HandlerError("a request without a message, task id or context id")
        if context.current_task is None:
            task = new_task(
                context.task_id,
                context.context_id,
                TaskState.TASK_STATE_SUBMITTED,
                history=[context.message],
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        incoming = Incoming(
            text=get_message_text(context.message),
            task_id=context.task_id,
            context_id=context.context_id,
            sender=str(context.call_context.state.get(SENDER_STATE, "")),
            data=tuple(_data_parts(context.message.parts)),
        )
        try:
            with tool_scope(context.task_id):
                reply = await self.handler.on_message(incoming, self.context)
        except Exception as exc:
            await updater.failed(
                new_text_message(str(exc) or type(exc).__name__, context_id=context.context_id)
            )
            return
        parts = []
        if reply.text is not None:
            parts.append(new_text_part(reply.text))
        if reply.data is not None:
            from a2a.helpers import new_data_part

            parts.append(new_data_part(reply.data))
        if parts:
            await updater.add_artifact(parts, name=reply.name)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id is None or context.context_id is None:
            return
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


class ObservedExecutor(AgentExecutor):
    """Wraps the agent's executor: a span, an audit scope and metrics around every request.

    The span is a child of the request's ``traceparent`` (Kafka headers, or HTTP headers
    over the gateway), so what the logic does (calls to other agents, records it
    publishes) carries the caller's trace id. The audit records ``message.received``
    (caused by the caller's record named in ``chorus-causation-id``), then whatever the
    logic records, then ``reply.sent`` with the outcome.
    """

    def __init__(
        self,
        inner: AgentExecutor,
        *,
        audit: AuditLog,
        metrics: AgentMetrics,
        text_limit: int = 4096,
        timeout: float | None = None,
    ) -> None:
        self.inner = inner
        self.audit = audit
        self.metrics = metrics
        self.text_limit = text_limit
        self.timeout = timeout
        """Seconds an execution may run (the Agent's ``handlerTimeout``); then it is
        cancelled and fails with the reason ``timeout``."""
        self._running: dict[str, tuple[RequestContext, EventQueue]] = {}

    def running(self, task_id: str) -> bool:
        """Whether ``task_id`` executes in this process now."""
        return task_id in self._running

    async def stop(self, task_id: str) -> bool:
        """Cancels ``task_id``'s execution here as a local ``CancelTask`` would (the
        executor's ``cancel``); ``False`` when it does not run here."""
        found = self._running.get(task_id)
        if found is None:
            return False
        await self.cancel(*found)
        return True

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id:
            self._running[context.task_id] = (context, event_queue)
        try:
            await self._execute(context, event_queue)
        finally:
            if context.task_id:
                self._running.pop(context.task_id, None)

    async def _execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        state = context.call_context.state
        headers = {str(k).lower(): str(v) for k, v in dict(state.get("headers") or {}).items()}
        task_id, context_id = context.task_id, context.context_id
        sender = str(state.get(SENDER_STATE, "") or headers.get("chorus-sender", ""))
        method = str(state.get("method", ""))
        with (
            tracing.span(
                "chorus.message",
                headers=headers,
                kind=SpanKind.CONSUMER,
                attributes={
                    "chorus.agent": self.audit.agent,
                    "a2a.method": method,
                    "a2a.task_id": task_id,
                    "a2a.context_id": context_id,
                    "chorus.sender": sender,
                },
            ),
            self.audit.scope(
                str(state.get("request_id") or task_id or ""),
                task_id=task_id,
                context_id=context_id,
                cause=headers.get(CAUSATION_HEADER),
            ),
        ):
            text = context.get_user_input()
            self.audit.record(
                "message.received", method=method, sender=sender, text=text[: self.text_limit]
            )
            outcome = "cancelled"
            try:
                with self.metrics.handling("message"):
                    await self._bounded(context, event_queue)
                outcome = "ok"
            except Exception as exc:
                outcome = "error"
                self.audit.record("error", error=f"{type(exc).__name__}: {exc}"[:1000])
                raise
            finally:
                self.audit.record("reply.sent", outcome=outcome)

    async def _bounded(self, context: RequestContext, event_queue: EventQueue) -> None:
        """The inner execution, cancelled after ``timeout``: the task then fails with an
        error that names the reason (its status message, and the caller's error)."""
        bound = asyncio.timeout(self.timeout)
        try:
            async with bound:
                await self.inner.execute(context, event_queue)
        except TimeoutError:
            if not bound.expired():
                raise  # the logic's own timeout, not ours
            raise InternalError(
                message=f"timeout: the task ran past handlerTimeout ({self.timeout:g}s)"
            ) from None

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        with self.audit.scope(
            str(context.task_id or ""), task_id=context.task_id, context_id=context.context_id
        ):
            self.audit.record("task.cancel")
            await self.inner.cancel(context, event_queue)


async def observed_event(
    event: DomainEvent,
    handle: Callable[[DomainEvent], Awaitable[None]],
    *,
    audit: AuditLog,
    metrics: AgentMetrics,
) -> None:
    """Runs ``handle(event)`` in a span (child of the record's trace) and an audit scope.

    The audit records ``event.received``, whatever the handler records, then
    ``event.handled``, or ``error`` when it raises (the exception propagates: the loop
    retries and dead-letters).
    """
    correlation = f"{event.topic}/{event.partition}/{event.offset}"
    with (
        tracing.span(
            "chorus.event",
            headers=event.headers,
            kind=SpanKind.CONSUMER,
            attributes={
                "chorus.agent": audit.agent,
                "messaging.destination.name": event.topic,
                "messaging.kafka.partition": event.partition,
                "messaging.kafka.offset": event.offset,
            },
        ),
        audit.scope(correlation, context_id=event.key, cause=event.headers.get(CAUSATION_HEADER)),
    ):
        # An envelope's own id (a Flink signal's CloudEvents id) lets a trace start there.
        value = event.value
        event_id = value.get("id") if isinstance(value, dict) else None
        audit.record(
            "event.received",
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
            event_id=str(event_id) if event_id is not None else None,
        )
        try:
            with metrics.handling("event"), tool_scope(correlation):
                await handle(event)
        except Exception as exc:
            audit.record("error", error=f"{type(exc).__name__}: {exc}"[:1000])
            raise
        audit.record("event.handled")


def _data_parts(parts: Collection[Part]) -> list[Any]:
    from a2a.helpers import get_data_parts

    return get_data_parts(list(parts))


def domain_event(
    topic: str, key: bytes | None, value: bytes | None, headers: Any, **position: int
) -> DomainEvent:
    """The :class:`DomainEvent` of a record: JSON values parsed, text keys decoded."""
    parsed: Any = value
    if value is not None:
        try:
            parsed = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = value
    return DomainEvent(
        topic=topic,
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        value=parsed,
        headers=header_map(headers),
        **position,
    )


def load_handler(path: str) -> Handler | AgentExecutor:
    """The agent logic named ``module:attribute``.

    Either a :class:`Handler` or an a2a-sdk ``AgentExecutor``: a subclass (instantiated
    without arguments) or an instance.
    """
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerError(f"handler {path}: cannot import {module_name}: {exc}") from exc
    target: Any = module
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise HandlerError(f"handler {path}: {module_name} has no {attribute}") from None
    if isinstance(target, type) and issubclass(target, Handler | AgentExecutor):
        factory: Callable[[], Handler | AgentExecutor] = target
        return factory()
    if isinstance(target, Handler | AgentExecutor):
        return target
    raise HandlerError(
        f"handler {path}: {getattr(target, '__name__', type(target).__name__)} is neither a "
        "chorus_agents.handler.Handler nor an a2a-sdk AgentExecutor"
    )
