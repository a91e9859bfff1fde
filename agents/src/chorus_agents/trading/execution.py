"""``execution``: places approved orders on the exchange and reports the outcome.

A code-defined agent answering A2A messages. An order request (from ``market-analyst``,
after ``risk-assessor`` approved it) is a JSON object::

    {"request_id", "incident", "symbol", "side", "quantity", "limit_price"?}

It is placed with the exchange's ``place_order`` under the idempotency key
``order:<request_id>``: a request sent again (a redelivered signal makes the analyst ask
again with the same ``request_id``) returns the first order and fills nothing twice.
The outcome, published on ``trading.orders`` (key: the symbol), audited as a
``decision`` and answered as a data part::

    {"request_id", "incident", "symbol", "side", "quantity",
     "status": "filled"|"open"|"rejected", "order_id"?, "fill_price"?, "rule"?, "reason"?}

A refused order has ``status: rejected`` and the exchange's ``rule`` (``compliance`` when
compliance restricted the symbol, ``max_position``, ...); it is an outcome, not a failure.
"""

from __future__ import annotations

from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.trading.common import (
    EXCHANGE,
    ORDERS,
    TradingError,
    rejection_rule,
    request_json,
    tool_json,
)


def order_key(request_id: str) -> str:
    """The idempotency key of the order placed for ``request_id``."""
    return f"order:{request_id}"


class ExecutionAgent(Handler):
    """The ``execution`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.orders = topic_prefix + ORDERS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        try:
            request_id = str(request["request_id"])
            symbol = str(request["symbol"])
            side = str(request["side"])
            quantity = int(request["quantity"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TradingError(f"agent {ctx.agent}: an order request without {exc}") from None
        arguments: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": quantity}
        if request.get("limit_price") is not None:
            arguments["limit_price"] = float(request["limit_price"])
        result = await ctx.tools.call(
            EXCHANGE, "place_order", arguments, idempotency_key=order_key(request_id)
        )
        outcome: dict[str, Any] = {
            "request_id": request_id,
            "incident": request.get("incident"),
            "symbol": symbol,
            "side": side,
            "quantity": quantity,
        }
        if result.is_error:
            outcome.update(status="rejected", rule=rejection_rule(result.text), reason=result.text)
        else:
            order = tool_json(result)
            outcome.update(
                status=order["status"], order_id=order["order_id"], fill_price=order["fill_price"]
            )
        ctx.publish(self.orders, outcome, key=symbol)
        ctx.audit.record(
            "decision",
            action="order",
            incident=outcome["incident"],
            signal_id=outcome["incident"],
            symbol=symbol,
            status=outcome["status"],
            rule=outcome.get("rule"),
            order_id=outcome.get("order_id"),
        )
        return Reply(text=f"{side} {quantity} {symbol}: {outcome['status']}", data=outcome)
