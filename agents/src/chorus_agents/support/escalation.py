"""``escalation``: turns an unhappy customer's triggers into an escalated case and a resolution.

A code-defined agent subscribed to ``support.signals``. Mild triggers are dropped
without a tool call (:attr:`~chorus_agents.support.common.Trigger.actionable`). On an
actionable one it looks the customer up in the CRM (``get_customer``: tier, contact
history, open cases) and:

- when the customer already has a case with a specialist queue (an earlier trigger of
  the same incident escalated it: the Flink job writes several per incident, a sentiment
  drop, a long wait, a repeat contact), it records ``already_escalated`` and asks no one;
- otherwise it takes the customer's open case, or opens one (``open_case``), escalates it
  to the queue :func:`queue_for` picks (``escalate_case``, reason naming the incident),
  and asks that queue's specialist agent by A2A (:data:`SPECIALISTS`; a queue without
  one is left to people).

Every actionable trigger ends in one record on ``support.escalations`` (key: the
customer id)::

    {"incident", "kind", "conversation_id", "customer_id", "tier", "summary",
     "action": "escalate"|"already_escalated", "case_id", "queue",
     "specialist"?, "resolution"?}

and one ``decision`` audit record naming the ``incident`` (the trigger id) and the case,
after the runtime's ``agent.call`` record that the specialist's records name as their
cause: the audit topic holds the chain trigger -> escalation -> resolution.

Idempotency: ``open_case`` and ``escalate_case`` carry the keys ``case:<incident>`` and
``escalate:<incident>``, and the escalation's reason names the incident, so a redelivered
trigger finds its own case and carries on (the specialist's request id derives from the
incident too, and its refund key from the case). Triggers of one customer arrive under
different keys (one per conversation) and may be handled concurrently: they are
serialised per customer within the process. With several replicas, two conversations of
one customer can still race; the CRM then refuses the second escalation
(``already_escalated``), which is recorded as such.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.support.common import (
    ESCALATIONS,
    HELPDESK,
    SIGNALS,
    Trigger,
    answer_data,
    dumps,
    refusal_rule,
    tool_json,
)

SPECIALISTS: Mapping[str, str] = {
    "billing": "billing-specialist",
    "technical": "technical-specialist",
}
"""The specialist agent of each CRM queue; the ``retention`` queue is people."""
TECHNICAL_WORDS = ("password", "login", "sign in", "sign-in", "error", "crash", "app", "bug")


def queue_for(customer: Mapping[str, Any]) -> str:
    """The specialist queue for a customer's escalation (pure).

    ``technical`` when their contact history or open cases speak of a technical problem
    (:data:`TECHNICAL_WORDS`), else ``billing``: an unhappy customer of a shop is most
    often unhappy about an order, which billing can put right.
    """
    texts = [str(c.get("summary", "")) for c in customer.get("contacts") or ()]
    texts += [str(c.get("subject", "")) for c in customer.get("open_cases") or ()]
    words = " ".join(texts).lower()
    return "technical" if any(w in words for w in TECHNICAL_WORDS) else "billing"


def escalated_case(customer: Mapping[str, Any]) -> dict[str, Any] | None:
    """The customer's open case already with a specialist queue, if any."""
    for case in customer.get("open_cases") or ():
        if case.get("status") == "escalated":
            return dict(case)
    return None


class EscalationAgent(Handler):
    """The ``escalation`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.signals = topic_prefix + SIGNALS
        self.escalations = topic_prefix + ESCALATIONS
        self._locks: dict[str, asyncio.Lock] = {}

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        trigger = Trigger.parse(event.value)
        if trigger is None or not trigger.actionable:
            return
        lock = self._locks.setdefault(trigger.customer_id, asyncio.Lock())
        async with lock:
            await self._escalate(trigger, ctx)

    async def _escalate(self, trigger: Trigger, ctx: Context) -> None:
        customer = tool_json(
            await ctx.tools.call(HELPDESK, "get_customer", {"customer_id": trigger.customer_id})
        )
        record: dict[str, Any] = {
            "incident": trigger.id,
            "kind": trigger.kind,
            "conversation_id": trigger.conversation_id,
            "customer_id": trigger.customer_id,
            "tier": customer.get("tier"),
            "summary": trigger.summary,
        }
        case = escalated_case(customer)
        if case is not None and trigger.id not in str(case.get("note", "")):
            record.update(action="already_escalated", case_id=case["case_id"], queue=case["queue"])
        else:
            case = case or await self._case(trigger, customer, ctx)
            queue = case.get("queue") or queue_for(customer)
            result = await ctx.tools.call(
                HELPDESK,
                "escalate_case",
                {
                    "case_id": case["case_id"],
                    "queue": queue,
                    "reason": f"{trigger.summary} (tier {customer.get('tier')}, "
                    f"incident {trigger.id})",
                },
                idempotency_key=f"escalate:{trigger.id}",
            )
            if result.is_error and refusal_rule(result.text) == "already_escalated":
                # Another replica's trigger of the same customer got there first.
                record.update(action="already_escalated", case_id=case["case_id"], queue=queue)
            else:
                escalated = tool_json(result)
                record.update(action="escalate", case_id=escalated["case_id"], queue=queue)
                specialist = SPECIALISTS.get(queue)
                if specialist is not None:
                    request = {
                        "request_id": f"{trigger.id}/resolve",
                        "incident": trigger.id,
                        "case_id": escalated["case_id"],
                        "customer_id": trigger.customer_id,
                        "tier": customer.get("tier"),
                        "reason": trigger.summary,
                    }
                    record["specialist"] = specialist
                    record["resolution"] = answer_data(
                        await ctx.agents.ask(specialist, dumps(request)), agent=specialist
                    )
        ctx.publish(self.escalations, record, key=trigger.customer_id)
        resolution = record.get("resolution") or {}
        ctx.audit.record(
            "decision",
            action=record["action"],
            incident=trigger.id,
            trigger_kind=trigger.kind,
            customer_id=trigger.customer_id,
            case_id=record["case_id"],
            queue=record["queue"],
            specialist=record.get("specialist"),
            resolution=resolution.get("status"),
            refund_id=resolution.get("refund_id"),
            rule=resolution.get("rule"),
        )

    async def _case(
        self, trigger: Trigger, customer: Mapping[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """The customer's open case, or a new one for this incident."""
        for case in customer.get("open_cases") or ():
            if case.get("status") == "open":
                return dict(case)
        opened = tool_json(
            await ctx.tools.call(
                HELPDESK,
                "open_case",
                {"customer_id": trigger.customer_id, "subject": trigger.summary},
                idempotency_key=f"case:{trigger.id}",
            )
        )
        return dict(opened)
