"""``compliance``: vetoes trading in a symbol during a flash crash.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the exchange's ``restrict_symbol`` tool) behind a small code-defined gate:

- only a *flash crash* (a ``price_spike`` at least 5 % below the VWAP, see
  :attr:`~chorus_agents.trading.common.Signal.flash_crash`) reaches the model; every
  other signal is dropped without a model call (with a real model, most of the stream
  would otherwise cost a call each);
- the model decides and acts: with the offline ``scripted`` provider, the packaged
  :data:`SCRIPT` (``compliance.script.yaml``), whose rules match the signal's content
  themselves (kind, deviation), so the script is right on its own too;
- the gate publishes what was done on ``trading.compliance`` (key: the symbol)::

      {"incident", "symbol", "action": "restrict"|"none", "restricted", "answer"}

  and audits a ``decision`` naming the incident (beside the loop's own ``model.call``,
  ``tool.call`` and ``decision`` records). ``restricted`` is true only when the
  exchange confirmed ``restrict_symbol`` for the signal's symbol.

The restriction is the veto: the exchange then refuses every new order in the symbol
with rule ``compliance``. Tool calls carry the loop's idempotency keys
``<topic>/<partition>/<offset>/<step>/<n>``.

Why a gate in code: an Agent's ``model`` has no field for a script file (the operator
gives the runtime none), and an instructed agent audits its answer but publishes
nothing. The Agent keeps ``instructions`` and ``model`` in its spec (for its card and
for people); the gate uses the same :data:`INSTRUCTIONS` and the packaged script.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import ModelProvider
from chorus_agents.models.scripted import ScriptedModel
from chorus_agents.tools import ToolGateway, ToolInfo, ToolResult
from chorus_agents.trading.common import COMPLIANCE, SIGNALS, Signal

SCRIPT = Path(__file__).with_name("compliance.script.yaml")
"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the trading desk's compliance officer. You are shown market signals from "
    "trading.signals. When a price_spike shows a flash crash (the price at least 5% below "
    "its VWAP), restrict trading in that symbol with restrict_symbol, giving the deviation "
    "and the signal id as the reason. Otherwise take no action. Answer in one sentence."
)


class _Recorded(ToolGateway):
    """A gateway that remembers the calls it passed on and what they answered."""

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

    async def aclose(self) -> None:
        """The inner gateway is the agent's; the host closes it."""


class ComplianceAgent(Handler):
    """The ``compliance`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(
        self, model: ModelProvider | None = None, *, max_steps: int = 4, topic_prefix: str = ""
    ) -> None:
        self.signals = topic_prefix + SIGNALS
        self.compliance = topic_prefix + COMPLIANCE
        self.model = model if model is not None else ScriptedModel.from_file(SCRIPT)
        self.max_steps = max_steps

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        signal = Signal.parse(event.value)
        if signal is None or not signal.flash_crash:
            return
        tools = _Recorded(ctx.tools)
        loop = InstructedAgent(
            agent=ctx.agent,
            instructions=INSTRUCTIONS,
            model=self.model,
            tools=tools,
            audit=ctx.audit,
            max_steps=self.max_steps,
        )
        text = f"Event on {event.topic} (key {event.key}):\n" + json.dumps(
            event.value, ensure_ascii=False
        )
        reply = await loop.run(
            text,
            task_id=f"{event.topic}/{event.partition}/{event.offset}",
            context_id=event.key or "",
        )
        restricted = any(
            name == "restrict_symbol"
            and not result.is_error
            and arguments.get("symbol") == signal.symbol
            for name, arguments, result in tools.calls
        )
        action = "restrict" if restricted else "none"
        ctx.publish(
            self.compliance,
            {
                "incident": signal.id,
                "symbol": signal.symbol,
                "action": action,
                "restricted": restricted,
                "answer": reply.text,
            },
            key=signal.symbol,
        )
        ctx.audit.record("decision", action=action, incident=signal.id, symbol=signal.symbol)

    async def aclose(self) -> None:
        """Closes the model's client (the host closes the tools)."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()
