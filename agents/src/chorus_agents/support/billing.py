"""``billing-specialist``: puts an escalated customer's latest order right, if the model agrees.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the order system's ``refund_order`` tool) behind a small code-defined gate. A request
(from ``escalation``) is a JSON object::

    {"request_id", "incident", "case_id", "customer_id", "tier"?, "reason"?}

- the pre-filter: the gate lists the customer's orders (``list_orders``) and takes the
  latest one (:func:`latest_order`); a customer without orders is answered ``no_order``
  without a model call;
- the model decides: it is shown the case and the order (JSON), and its instructions
  refund the order's total with ``refund_order``, except an order that has not shipped
  yet (``placed``): that one can still be cancelled, so it declines. With the offline
  ``scripted`` provider, the spec's ``model.script`` (``ctx.model``) does just that;
- the order system's rules decide too (30 days, once per order, up to the total): a
  refused refund is an outcome, not a failure, answered with the rule it broke
  (``refund_window``, ``one_refund_per_order``, ...).

The loop runs as task ``refund:<case_id>``, so its calls carry the idempotency keys
``refund:<case_id>/<step>/<n>``: a request sent again refunds nothing twice. The outcome,
published on ``support.refunds`` (key: the customer id), audited as a ``decision``
(``action: refund`` or ``none``) and answered as a data part::

    {"request_id", "incident", "case_id", "customer_id", "order_id"?,
     "status": "refunded"|"refused"|"declined"|"no_order", "refund_id"?, "amount"?,
     "rule"?, "reason"?, "answer"?}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, Incoming, Reply
from chorus_agents.support.common import (
    HELPDESK,
    REFUNDS,
    SupportError,
    refusal_rule,
    request_json,
    tool_json,
)

INSTRUCTIONS = (
    "You are the shop's billing specialist. You are shown an escalated customer's case and "
    "their latest order. Refund the order's total with refund_order, giving the case as the "
    "reason, unless the order has not shipped yet (status placed): that one can still be "
    "cancelled, so do not refund it and say so. Answer in one sentence."
)
"""The Agent spec's instructions (a test compares them), which the gate runs the model with."""


def refund_key(case_id: str) -> str:
    """The task of the refund loop for ``case_id``: its calls' idempotency keys start with it."""
    return f"refund:{case_id}"


def latest_order(orders: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The most recently placed order (ties: the higher id); ``None`` without orders (pure)."""
    if not orders:
        return None

    def when(order: Mapping[str, Any]) -> tuple[str, str]:
        return str(order.get("placed", "")), str(order.get("order_id", ""))

    latest = max(orders, key=when)
    return dict(latest)


def prompt(request: Mapping[str, Any], order: Mapping[str, Any]) -> str:
    """What the model is shown: the case, then the order's JSON (sorted keys; the script
    matches it)."""
    return (
        f"Escalated case {request['case_id']} of customer {request['customer_id']} "
        f"(tier {request.get('tier') or 'unknown'}): {request.get('reason') or 'escalated'}."
        "\nTheir latest order:\n" + json.dumps(order, ensure_ascii=False, sort_keys=True)
    )


class BillingSpecialist(GatedInstructedAgent):
    """The ``billing-specialist`` agent; see the module docstring."""

    INSTRUCTIONS = INSTRUCTIONS

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
            await self._decide(request, order, outcome, ctx, context_id=message.context_id)
        ctx.publish(self.topic(REFUNDS), outcome, key=customer_id)
        ctx.audit.record(
            "decision",
            action="refund" if outcome["status"] in ("refunded", "refused") else "none",
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

    async def _decide(
        self,
        request: Mapping[str, Any],
        order: Mapping[str, Any],
        outcome: dict[str, Any],
        ctx: Context,
        *,
        context_id: str,
    ) -> None:
        """Asks the model about refunding ``order``; records what came of it in ``outcome``."""
        reply, tools = await self.consult(
            ctx,
            prompt(request, order),
            task_id=refund_key(outcome["case_id"]),
            context_id=context_id,
        )
        outcome["answer"] = reply.text
        calls = [(args, result) for name, args, result in tools.calls if name == "refund_order"]
        if not calls:
            outcome.update(status="declined", reason=reply.text)
            return
        _, result = calls[-1]
        if result.is_error:
            outcome.update(status="refused", rule=refusal_rule(result.text), reason=result.text)
        else:
            refund = tool_json(result)
            outcome.update(
                status="refunded", refund_id=refund["refund_id"], amount=refund["amount"]
            )
