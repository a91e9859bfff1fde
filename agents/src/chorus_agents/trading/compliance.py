"""``compliance``: vetoes trading in a symbol during a flash crash.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the exchange's ``restrict_symbol`` tool) behind a small code-defined gate:

- the pre-filter: only a *crash suspect* (a ``price_spike`` at least 4 % below the VWAP,
  see :attr:`~chorus_agents.trading.common.Signal.crash_suspect`) reaches the model;
  every other signal is dropped without a model call (with a real model, most of the
  stream would otherwise cost a call each);
- the model decides and acts: the spec's model (``ctx.model``); its instructions restrict
  a symbol only for a flash crash (5 % or more below the VWAP), so it declines the
  suspects between 4 and 5 % (a crash's first trades, its recovery). With the offline
  ``scripted`` provider, the spec's ``model.script`` matches the signal's content itself
  (kind, deviation);
- the gate publishes what was done on ``trading.compliance`` (key: the symbol)::

      {"incident", "symbol", "action": "restrict"|"none", "restricted", "answer"}

  and audits a ``decision`` naming the incident (beside the loop's own ``model.call``,
  ``tool.call`` and ``decision`` records). ``restricted`` is true only when the
  exchange confirmed ``restrict_symbol`` for the signal's symbol.

The restriction is the veto: the exchange then refuses every new order in the symbol
with rule ``compliance``. Tool calls carry the loop's idempotency keys
``<topic>/<partition>/<offset>/<step>/<n>``.

Why a gate in code: an instructed agent audits its answer but publishes nothing. The
Agent keeps ``instructions`` and ``model`` (its script too) in its spec; the gate uses the
same :data:`INSTRUCTIONS` and the spec's model (``ctx.model``).
"""

from __future__ import annotations

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, DomainEvent
from chorus_agents.trading.common import COMPLIANCE, SIGNALS, Signal

"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the trading desk's compliance officer. You are shown market signals from "
    "trading.signals. When a price_spike shows a flash crash (the price at least 5% below "
    "its VWAP), restrict trading in that symbol with restrict_symbol, giving the deviation "
    "and the signal id as the reason. Otherwise take no action. Answer in one sentence."
)


class ComplianceAgent(GatedInstructedAgent):
    """The ``compliance`` agent; see the module docstring."""

    INSTRUCTIONS = INSTRUCTIONS

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.topic(SIGNALS):
            return
        signal = Signal.parse(event.value)
        if signal is None or not signal.crash_suspect:
            return
        reply, tools = await self.consult_event(event, ctx)
        restricted = bool(tools.succeeded("restrict_symbol", symbol=signal.symbol))
        action = "restrict" if restricted else "none"
        ctx.publish(
            self.topic(COMPLIANCE),
            {
                "incident": signal.id,
                "symbol": signal.symbol,
                "action": action,
                "restricted": restricted,
                "answer": reply.text,
            },
            key=signal.symbol,
        )
        ctx.audit.record(
            "decision",
            action=action,
            incident=signal.id,
            signal_id=signal.id,
            symbol=signal.symbol,
        )
