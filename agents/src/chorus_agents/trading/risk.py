"""``risk-assessor``: approves or rejects a proposed trade, and sizes it.

A code-defined agent answering A2A messages. A proposal (from ``market-analyst``) is a
JSON object::

    {"proposal_id", "incident", "symbol", "side": "buy"|"sell", "quantity", "kind", "severity"}

The assessor reads the exchange's positions and the symbol's quote (tools
``get_positions``, ``get_quote``) and answers with a data part::

    {"proposal_id", "incident", "symbol", "side", "decision": "approve"|"reject",
     "size", "score", "position", "last", "reason"}

Rules: only a trade that *reduces* the position is approved (de-risking during an
incident, never adding to it); its size is at most the proposal, the position, the
exchange's per-order quantity and notional limits; below a risk score of 0.5 (a mild
signal) only half of it. ``score`` is the signal's severity against twice its severe
threshold, capped at 1. Each assessment is published on ``trading.risk-scores`` (key:
the symbol) and audited as a ``decision`` naming the incident.
"""

from __future__ import annotations

import math
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.trading.common import (
    EXCHANGE,
    RISK_SCORES,
    SEVERE_DEVIATION,
    SEVERE_VOLUME_RATIO,
    TradingError,
    request_json,
    tool_json,
)
from chorus_agents.trading.exchange import Limits


def risk_score(kind: str, severity: float) -> float:
    """0 (calm) to 1: the severity against twice the kind's severe threshold."""
    threshold = SEVERE_DEVIATION if kind == "price_spike" else SEVERE_VOLUME_RATIO
    return round(min(1.0, max(0.0, severity) / (2 * threshold)), 3)


def assess(
    proposal: dict[str, Any], *, position: int, last: float, limits: Limits
) -> dict[str, Any]:
    """The assessment of ``proposal`` given the position and last price (pure)."""
    side = str(proposal.get("side", ""))
    requested = int(proposal.get("quantity", 0))
    score = risk_score(str(proposal.get("kind", "")), float(proposal.get("severity", 0.0)))
    answer: dict[str, Any] = {
        "proposal_id": proposal.get("proposal_id"),
        "incident": proposal.get("incident"),
        "symbol": proposal.get("symbol"),
        "side": side,
        "requested": requested,
        "score": score,
        "position": position,
        "last": last,
    }
    reducing = (side == "sell" and position > 0) or (side == "buy" and position < 0)
    if not reducing:
        return {
            **answer,
            "decision": "reject",
            "size": 0,
            "reason": f"a {side} of {requested} does not reduce the position {position}",
        }
    cap = min(
        requested,
        abs(position),
        limits.max_order_quantity,
        math.floor(limits.max_order_notional / last) if last > 0 else 0,
    )
    size = cap if score >= 0.5 else math.ceil(cap / 2)
    if size <= 0:
        return {**answer, "decision": "reject", "size": 0, "reason": "nothing left to trade"}
    return {
        **answer,
        "decision": "approve",
        "size": size,
        "reason": f"reduces the position {position} by {size} (risk score {score})",
    }


class RiskAgent(Handler):
    """The ``risk-assessor`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, limits: Limits | None = None, *, topic_prefix: str = "") -> None:
        self.limits = limits or Limits()
        self.risk_scores = topic_prefix + RISK_SCORES

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        proposal = request_json(message.text, message.data, agent=ctx.agent)
        symbol = proposal.get("symbol")
        if not isinstance(symbol, str):
            raise TradingError(f"agent {ctx.agent}: a proposal without a symbol")
        positions = tool_json(await ctx.tools.call(EXCHANGE, "get_positions", {}))
        quote = tool_json(await ctx.tools.call(EXCHANGE, "get_quote", {"symbol": symbol}))
        assessment = assess(
            proposal,
            position=int(positions.get(symbol, 0)),
            last=float(quote["last"]),
            limits=self.limits,
        )
        ctx.publish(self.risk_scores, assessment, key=symbol)
        ctx.audit.record(
            "decision",
            action=assessment["decision"],
            incident=assessment["incident"],
            signal_id=assessment["incident"],
            symbol=symbol,
            size=assessment["size"],
            score=assessment["score"],
            reason=assessment["reason"],
        )
        return Reply(text=f"{assessment['decision']}: {assessment['reason']}", data=assessment)
