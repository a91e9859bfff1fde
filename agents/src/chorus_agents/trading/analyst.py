"""``market-analyst``: turns price spikes and volume anomalies into risk-checked orders.

A code-defined agent subscribed to ``trading.signals``. ``vwap`` signals are context and
ignored. On a ``price_spike`` or ``volume_anomaly`` it reads the exchange's positions
(``get_positions``); when the desk holds a position in the symbol it proposes to reduce
it (half of it on a severe signal, a quarter otherwise), asks ``risk-assessor`` by A2A,
and when risk approves, asks ``execution`` to place the approved size. Without a
position there is nothing at risk: the analysis says so and nothing is asked.

Every actionable signal ends in one record on ``trading.analysis`` (key: the symbol)::

    {"incident", "kind", "symbol", "severity", "severe", "position",
     "action": "reduce"|"none", "proposal"?, "risk"?, "order"?}

and one ``decision`` audit record with the same ``incident`` (the signal id), after the
runtime's ``agent.call`` records whose ids the callees' records name as their cause: the
audit topic holds the chain signal -> analysis -> risk -> order. The proposal's and the
order request's ids derive from the signal id, so a redelivered signal asks again with
the same ids, and execution's idempotency key keeps the exchange from filling twice.
"""

from __future__ import annotations

import math
from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.trading.common import (
    ACTIONABLE,
    ANALYSIS,
    EXCHANGE,
    SIGNALS,
    Signal,
    answer_data,
    dumps,
    tool_json,
)

RISK_AGENT = "risk-assessor"
EXECUTION_AGENT = "execution"


def proposal_for(signal: Signal, position: int) -> dict[str, Any] | None:
    """The trade that reduces ``position`` given ``signal``; ``None`` when flat (pure)."""
    if position == 0:
        return None
    fraction = 0.5 if signal.severe else 0.25
    return {
        "proposal_id": f"{signal.id}/reduce",
        "incident": signal.id,
        "symbol": signal.symbol,
        "side": "sell" if position > 0 else "buy",
        "quantity": max(1, math.ceil(abs(position) * fraction)),
        "kind": signal.kind,
        "severity": round(signal.severity, 6),
        "reason": f"{signal.kind} on {signal.symbol}: reduce the position {position}",
    }


class MarketAnalyst(Handler):
    """The ``market-analyst`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.signals = topic_prefix + SIGNALS
        self.analysis = topic_prefix + ANALYSIS

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        signal = Signal.parse(event.value)
        if signal is None or signal.kind not in ACTIONABLE:
            return
        positions = tool_json(await ctx.tools.call(EXCHANGE, "get_positions", {}))
        position = int(positions.get(signal.symbol, 0))
        analysis: dict[str, Any] = {
            "incident": signal.id,
            "kind": signal.kind,
            "symbol": signal.symbol,
            "severity": round(signal.severity, 6),
            "severe": signal.severe,
            "position": position,
            "action": "none",
        }
        proposal = proposal_for(signal, position)
        if proposal is not None:
            analysis.update(action="reduce", proposal=proposal)
            risk = answer_data(await ctx.agents.ask(RISK_AGENT, dumps(proposal)), agent=RISK_AGENT)
            analysis["risk"] = risk
            if risk.get("decision") == "approve" and int(risk.get("size", 0)) > 0:
                request = {
                    "request_id": proposal["proposal_id"],
                    "incident": signal.id,
                    "symbol": signal.symbol,
                    "side": proposal["side"],
                    "quantity": int(risk["size"]),
                }
                analysis["order"] = answer_data(
                    await ctx.agents.ask(EXECUTION_AGENT, dumps(request)), agent=EXECUTION_AGENT
                )
        ctx.publish(self.analysis, analysis, key=signal.symbol)
        order = analysis.get("order") or {}
        ctx.audit.record(
            "decision",
            action=analysis["action"],
            incident=signal.id,
            signal_id=signal.id,
            symbol=signal.symbol,
            signal_kind=signal.kind,
            position=position,
            risk=(analysis.get("risk") or {}).get("decision"),
            order_status=order.get("status"),
            order_rule=order.get("rule"),
        )
