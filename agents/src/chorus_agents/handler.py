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
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers import get_message_text, new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Part, TaskState

from chorus_agents.binding.codec import OutRecord, header_map
from chorus_agents.binding.outbox import Outbox


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


class Context:
    """What a handler may do besides computing its answer: publish, and call other agents.

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
    ) -> None:
        self.agent = agent
        self.agents = agents
        """An :class:`~chorus_agents.calls.AgentCaller`: ``await ctx.agents.ask("x", "...")``."""
        self._outbox = outbox
        self._publish = frozenset(publish_topics)

    def publish(self, topic: str, value: Any, *, key: str | None = None) -> None:
        """Writes ``value`` (JSON) to ``topic``, one of the agent's publish topics."""
        if topic not in self._publish:
            allowed = ", ".join(sorted(self._publish)) or "none"
            raise HandlerError(
                f"agent {self.agent}: may not publish to {topic} (its publish topics: {allowed})"
            )
        self._outbox.append(
            OutRecord(
                topic=topic,
                key=key.encode("utf-8") if key is not None else None,
                value=json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                headers=(("chorus-sender", self.agent.encode("utf-8")),),
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
            sender=str(context.call_context.state.get("chorus.sender", "")),
            data=tuple(_data_parts(context.message.parts)),
        )
        try:
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
