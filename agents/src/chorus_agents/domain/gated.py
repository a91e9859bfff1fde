"""An instruction-driven loop behind a code-defined pre-filter, as the reference domains use it.

The domain's handler (trading's ``compliance``, maintenance's ``production-scheduling``,
support's ``front-line``, traffic's ``public-transport``, the ICU's ``treatment-advice``)
subclasses :class:`GatedInstructedAgent`. Its pre-filter (the gate) decides in code only
which inputs reach the model, never what is done: for those, it runs
:class:`~chorus_agents.instructed.InstructedAgent` with the Agent spec's model
(``ctx.model``, which the runtime builds from ``model``; a ``scripted`` one's rules are the
spec's ``model.script``) and the same :attr:`~GatedInstructedAgent.INSTRUCTIONS` as the
spec (:meth:`~GatedInstructedAgent.consult`), then publishes and audits what the model did,
reading the tool calls the loop made from a :class:`RecordingGateway`. Change the spec's
model and another model decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from chorus_agents.handler import Context, DomainEvent, Handler, HandlerError, Reply
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import ModelProvider
from chorus_agents.tools import ToolGateway, ToolInfo, ToolResult


class RecordingGateway(ToolGateway):
    """A gateway that passes every call on to ``inner`` and remembers it with its answer.

    ``calls`` holds ``(name, arguments, result)`` in call order, refused or failed calls
    excepted (they raise). :meth:`aclose` does nothing: the inner gateway is the agent's,
    the host closes it.
    """

    def __init__(self, inner: ToolGateway) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Mapping[str, Any], ToolResult]] = []

    async def list_tools(self) -> tuple[ToolInfo, ...]:
        return await self.inner.list_tools()

    async def call(
        self, tool: str, name: str, arguments: Mapping[str, Any], *, idempotency_key: str
    ) -> ToolResult:
        result = await self.inner.call(tool, name, arguments, idempotency_key=idempotency_key)
        self.calls.append((name, dict(arguments), result))
        return result

    def succeeded(self, name: str, **matching: Any) -> list[Mapping[str, Any]]:
        """The arguments of the calls of ``name`` the server confirmed (no ``is_error``)
        whose arguments equal ``matching``, in call order."""
        return [
            arguments
            for called, arguments, result in self.calls
            if called == name
            and not result.is_error
            and all(arguments.get(k) == v for k, v in matching.items())
        ]

    async def aclose(self) -> None:
        """The inner gateway is the agent's; the host closes it."""


class GatedInstructedAgent(Handler):
    """A handler that runs an instructed loop for what its gate lets through.

    A subclass sets :attr:`INSTRUCTIONS` (the Agent spec's, which a test compares), and
    :attr:`USES_TOOLS` ``False`` when the loop gets no tools. Its ``on_message`` or
    ``on_event`` is the gate: it calls :meth:`consult` (or :meth:`consult_event`) only
    for what deserves the model, and publishes and audits the outcome itself. The model
    is ``ctx.model`` (the spec's), unless one is given here (tests).

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`): :meth:`topic` applies it.
    """

    INSTRUCTIONS: ClassVar[str]
    USES_TOOLS: ClassVar[bool] = True
    DEFAULT_MAX_STEPS: ClassVar[int] = 4

    def __init__(
        self,
        model: ModelProvider | None = None,
        *,
        max_steps: int | None = None,
        topic_prefix: str = "",
    ) -> None:
        self.model = model
        self.max_steps = max_steps if max_steps is not None else self.DEFAULT_MAX_STEPS
        self.topic_prefix = topic_prefix

    def topic(self, name: str) -> str:
        """The domain topic ``name`` with this agent's prefix."""
        return self.topic_prefix + name

    def loop(self, ctx: Context, tools: ToolGateway | None) -> InstructedAgent:
        """The instructed loop for one input, auditing to ``ctx.audit``."""
        model = self.model or ctx.model
        if model is None:
            raise HandlerError(f"agent {ctx.agent}: its spec has no model to consult")
        return InstructedAgent(
            agent=ctx.agent,
            instructions=self.INSTRUCTIONS,
            model=model,
            tools=tools,
            audit=ctx.audit,
            max_steps=self.max_steps,
        )

    async def consult(
        self, ctx: Context, text: str, *, task_id: str, context_id: str
    ) -> tuple[Reply, RecordingGateway]:
        """Runs the loop on ``text`` (tool calls keyed ``<task_id>/<step>/<n>``): its reply
        and the tool calls it made (none without :attr:`USES_TOOLS`). A failure of the
        model or the tools raises, failing the input."""
        tools = RecordingGateway(ctx.tools)
        loop = self.loop(ctx, tools if self.USES_TOOLS else None)
        reply = await loop.run(text, task_id=task_id, context_id=context_id)
        return reply, tools

    async def consult_event(
        self, event: DomainEvent, ctx: Context, *, extra: str = ""
    ) -> tuple[Reply, RecordingGateway]:
        """:meth:`consult` on an event shown as the instructed agent shows one (``Event on
        <topic> (key <key>):`` and its value as JSON), then ``extra``, as task
        ``<topic>/<partition>/<offset>`` in the key's context."""
        text = f"Event on {event.topic} (key {event.key}):\n" + json.dumps(
            event.value, ensure_ascii=False
        )
        return await self.consult(
            ctx,
            text + extra,
            task_id=f"{event.topic}/{event.partition}/{event.offset}",
            context_id=event.key or "",
        )

    async def aclose(self) -> None:
        """Closes the model given here (the host closes the spec's model and the tools)."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()
