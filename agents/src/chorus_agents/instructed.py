"""Agents defined by instructions: a model-and-tools loop configured by the Agent spec alone.

:class:`InstructedAgent` is a :class:`~chorus_agents.handler.Handler`, so the runtime runs
it like a code-defined agent (``HandlerExecutor``: a task, the reply as its artifact).
For each A2A message (and each domain event, given to the model as a message) it runs a
ReAct-style loop:

1. ask the model, with the spec's ``instructions`` as the system prompt and the tools the
   agent may call (the allow-listed tools its MCP servers offer) as tool specs;
2. if the model asks for tool calls, run them in order through the
   :class:`~chorus_agents.tools.ToolGateway` (idempotency key ``<task id>/<step>/<n>``)
   and give the results back; a refused or failed call goes back as an error result, so
   the model can answer without it;
3. repeat until the model answers without tool calls (its text is the reply) or
   ``max_steps`` model calls were made (then the task fails).

Audit records: ``model.call`` per model call (provider, model, tokens, the estimated
``cost_usd`` when the model has a ``price``, stop reason), the
gateway's ``tool.call`` / ``tool.refused`` per tool call, and ``decision`` per answer.
A domain event's answer is audited, not published.

Contract (on top of :class:`~chorus_agents.handler.Handler`'s): concurrent messages run
concurrent loops; a retryable :class:`~chorus_agents.models.ModelError` is retried with
backoff, any other fails the task (or, for an event, is retried by delivery).
"""

from __future__ import annotations

import asyncio
import json
import random as _random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chorus_api.agent import ModelPrice
from chorus_api.runtime import RuntimeConfig

from chorus_agents.handler import Context, DomainEvent, Handler, HandlerError, Incoming, Reply
from chorus_agents.models import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
    provider_for,
    record_usage,
)
from chorus_agents.tools import (
    AuditSink,
    McpToolGateway,
    NullAudit,
    RetryPolicy,
    ToolError,
    ToolGateway,
    ToolInfo,
)

DEFAULT_MAX_STEPS = 8


MAX_RETRY_AFTER_S = 60.0
"""The longest ``Retry-After`` a model call waits before its next try."""


class InstructedError(HandlerError):
    """The loop ended without an answer (too many steps)."""


class InstructedAgent(Handler):
    """The model-and-tools loop; see the module docstring."""

    def __init__(
        self,
        *,
        agent: str,
        instructions: str,
        model: ModelProvider,
        tools: ToolGateway | None = None,
        audit: AuditSink | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_tokens: int = 1024,
        retry: RetryPolicy | None = None,
        price: ModelPrice | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        owns_model: bool = True,
    ) -> None:
        self.agent = agent
        self.instructions = instructions
        self.model = model
        self.tools = tools
        self.audit: AuditSink = audit if audit is not None else NullAudit()
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.retry = retry or RetryPolicy()
        self.price = price if price is not None else model.price
        """What the model's tokens cost (the Agent's ``model.price``, given or the model's):
        each call's estimated cost goes in its audit record (``cost_usd``) and metrics."""
        self.usage = Usage()
        """Tokens of every model call so far."""
        self._sleep = sleep
        self._random = random
        self._catalog: dict[str, ToolInfo] | None = None
        self._owns_model = owns_model

    @classmethod
    def from_config(
        cls, config: RuntimeConfig, *, audit: AuditSink | None = None, **kwargs: Any
    ) -> InstructedAgent:
        """The agent the config describes: its instructions, model and tool servers. A
        ``model`` given is the caller's to close (the host's: the spec's model, built once)."""
        agent = config.agent.key
        if config.instructions is None or config.model is None:
            raise HandlerError(f"agent {agent}: an instructed agent needs instructions and model")
        tools = McpToolGateway(config.tools, agent=agent, audit=audit) if config.tools else None
        given = kwargs.pop("model", None)
        return cls(
            agent=agent,
            instructions=config.instructions,
            model=given or provider_for(config.model),
            tools=tools,
            audit=audit,
            owns_model=given is None,
            **kwargs,
        )

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        text = message.text
        for data in message.data:
            text += "\n" + json.dumps(data, ensure_ascii=False)
        return await self.run(text, task_id=message.task_id, context_id=message.context_id)

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        value = event.value
        if isinstance(value, bytes):
            body = value.decode("utf-8", errors="replace")
        else:
            body = json.dumps(value, ensure_ascii=False)
        text = f"Event on {event.topic} (key {event.key}):\n{body}"
        task_id = f"{event.topic}/{event.partition}/{event.offset}"
        await self.run(text, task_id=task_id, context_id=event.key or "")

    async def run(self, text: str, *, task_id: str, context_id: str = "") -> Reply:
        """Runs the loop for one input; the model's final text is the reply."""
        catalog = await self._tools()
        specs = tuple(
            ToolSpec(name=name, description=info.description, input_schema=info.input_schema)
            for name, info in catalog.items()
        )
        messages: list[ChatMessage] = [ChatMessage(role="user", text=text)]
        total = Usage()
        for step in range(1, self.max_steps + 1):
            response = await self._complete(
                ModelRequest(
                    messages=tuple(messages),
                    system=self.instructions,
                    tools=specs,
                    max_tokens=self.max_tokens,
                ),
                task_id=task_id,
                step=step,
            )
            total += response.usage
            messages.append(response.as_message())
            if not response.tool_calls:
                self.audit.record(
                    "decision",
                    agent=self.agent,
                    task_id=task_id,
                    context_id=context_id,
                    outcome="answer",
                    steps=step,
                    text=response.text,
                    input_tokens=total.input_tokens,
                    output_tokens=total.output_tokens,
                )
                return Reply(text=response.text)
            for index, call in enumerate(response.tool_calls):
                key = f"{task_id}/{step}/{index}"
                messages.append(await self._call(call, catalog, key))
        self.audit.record(
            "decision",
            agent=self.agent,
            task_id=task_id,
            context_id=context_id,
            outcome="no-answer",
            steps=self.max_steps,
            input_tokens=total.input_tokens,
            output_tokens=total.output_tokens,
        )
        raise InstructedError(
            f"agent {self.agent}: no answer after {self.max_steps} model calls (task {task_id})"
        )

    async def _tools(self) -> dict[str, ToolInfo]:
        """The tools by the name the model sees: the tool's own, ``<server>__<name>`` on a clash."""
        if self._catalog is None:
            listed = await self.tools.list_tools() if self.tools is not None else ()
            counts: dict[str, int] = {}
            for info in listed:
                counts[info.name] = counts.get(info.name, 0) + 1
            self._catalog = {
                (info.name if counts[info.name] == 1 else f"{info.tool}__{info.name}"): info
                for info in listed
            }
        return self._catalog

    async def _complete(self, request: ModelRequest, *, task_id: str, step: int) -> ModelResponse:
        attempt = 0
        while True:
            try:
                response = await self.model.complete(request)
                break
            except ModelError as exc:
                attempt += 1
                if not exc.retryable or attempt >= self.retry.attempts:
                    self.audit.record(
                        "model.call",
                        agent=self.agent,
                        task_id=task_id,
                        step=step,
                        provider=self.model.name,
                        outcome="error",
                        error=str(exc),
                    )
                    raise
                # The provider's Retry-After, when it gave one and it is the longer wait.
                delay = self.retry.delay(attempt - 1, self._random)
                await self._sleep(max(delay, min(exc.retry_after or 0.0, MAX_RETRY_AFTER_S)))
        self.usage += response.usage
        usage = response.usage
        cost = (
            round(self.price.cost(usage.input_tokens, usage.output_tokens), 8)
            if self.price is not None
            else None
        )
        record_usage(self.model.name, response.model, usage, cost)
        self.audit.record(
            "model.call",
            agent=self.agent,
            task_id=task_id,
            step=step,
            provider=self.model.name,
            model=response.model,
            outcome="ok",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            **({"cost_usd": cost} if cost is not None else {}),
            stop_reason=response.stop_reason,
            tool_calls=[call.name for call in response.tool_calls],
        )
        return response

    async def _call(self, call: ToolCall, catalog: Mapping[str, ToolInfo], key: str) -> ChatMessage:
        if self.tools is None:
            return ChatMessage(
                role="tool",
                text=f"agent {self.agent}: has no tools (asked for '{call.name}')",
                tool_call_id=call.id,
                is_error=True,
            )
        info = catalog.get(call.name)
        if info is not None:
            tool, name = info.tool, info.name
        else:
            # Not a tool the model was offered: let the gateway refuse (and audit) it.
            tool, name = _guess(call.name, {i.tool for i in catalog.values()})
        try:
            result = await self.tools.call(tool, name, call.arguments, idempotency_key=key)
        except ToolError as exc:
            return ChatMessage(role="tool", text=str(exc), tool_call_id=call.id, is_error=True)
        return ChatMessage(
            role="tool", text=result.text, tool_call_id=call.id, is_error=result.is_error
        )

    async def aclose(self) -> None:
        """Closes the tool sessions, and the model's HTTP client when the model is its own."""
        if self.tools is not None:
            await self.tools.aclose()
        close = getattr(self.model, "aclose", None) if self._owns_model else None
        if close is not None:
            await close()


def _guess(called: str, servers: set[str]) -> tuple[str, str]:
    server, sep, name = called.partition("__")
    if sep and server in servers:
        return server, name
    if len(servers) == 1:
        return next(iter(servers)), called
    return "", called
