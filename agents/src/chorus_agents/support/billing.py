"""``billing-specialist``: puts an escalated customer's latest order right, within the rules.

A code-defined agent answering A2A messages. A request (from ``escalation``) is a JSON
object::

    {"request_id", "incident", "case_id", "customer_id", "tier"?, "reason"?}

The specialist lists the customer's orders (``list_orders``), takes the latest one
(:func:`latest_order`) and refunds its total (``refund_order``) under the idempotency key
``refund:<case_id>``, so a request sent again refunds nothing twice. The order system's
rules decide (30 days, once per order, up to the total); a refused refund is an outcome,
not a failure: it is answered with the rule it broke (``refund_window``,
``one_refund_per_order``, ...). The outcome, published on ``support.refunds`` (key:
the customer id), audited as a ``decision`` and answered as a data part::

    {"request_id", "incident", "case_id", "customer_id", "order_id"?,
     "status": "refunded"|"refused"|"no_order", "refund_id"?, "amount"?, "rule"?, "reason"?}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.support.common import (
    HELPDESK,
    REFUNDS,
    SupportError,
    refusal_rule,
    request_json,
    tool_json,
)


def refund_key(case_id: str) -> str:
    """The idempotency key of the refund made for ``case_id``."""
    return f"refund:{case_id}"


def latest_order(orders: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The most recently placed order (ties: the higher id); ``None`` without orders (pure)."""
    if not orders:
        return None

    def when(order: Mapping[str, Any]) -> tuple[str, str]:
        return str(order.get("placed", "")), str(order.get("order_id", ""))

    latest = max(orders, key=when)
    return dict(latest)


class BillingSpecialist(Handler):
    """The ``billing-specialist`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.refunds = topic_prefix + REFUNDS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        try:
            case_id = str(request["case_id"])
            customer_id = str(request["customer_id"])
        except KeyError as exc:
            raise SupportError(f"agent {ctx.agent}: a request without {exc}") from None
        outcome: dict[str, Any] = {
            "request_id": request.get("request_id"),
            "incident": request.get("incident"),
            "case_id": case_id,
            "customer_id": customer_id,
        }
        listed = tool_json(
            await ctx.tools.call(HELPDESK, "list_orders", {"customer_id": customer_id})
        )
        order = latest_order(listed.get("orders") or [])
        if order is None:
            outcome.update(status="no_order", reason=f"{customer_id} has no orders")
        else:
            outcome["order_id"] = order["order_id"]
            result = await ctx.tools.call(
                HELPDESK,
                "refund_order",
                {
                    "order_id": order["order_id"],
                    "amount": float(order["total"]),
                    "reason": f"case {case_id}: {request.get('reason') or 'escalated'}",
                },
                idempotency_key=refund_key(case_id),
            )
            if result.is_error:
                outcome.update(status="refused", rule=refusal_rule(result.text), reason=result.text)
            else:
                refund = tool_json(result)
                outcome.update(
                    status="refunded", refund_id=refund["refund_id"], amount=refund["amount"]
                )
        ctx.publish(self.refunds, outcome, key=customer_id)
        ctx.audit.record(
            "decision",
            action="refund",
            incident=outcome["incident"],
            case_id=case_id,
            customer_id=customer_id,
            order_id=outcome.get("order_id"),
            status=outcome["status"],
            refund_id=outcome.get("refund_id"),
            rule=outcome.get("rule"),
        )
        text = f"case {case_id}: {outcome['status']}"
        if outcome.get("order_id"):
            text += f" ({outcome['order_id']}{', ' + outcome['rule'] if 'rule' in outcome else ''})"
        return Reply(text=text, data=outcome)
