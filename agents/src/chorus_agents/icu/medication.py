"""``medication-management``: places, holds and discontinues medication orders in the EHR.

A code-defined agent answering A2A messages. A request (from ``treatment-advice``) is a
JSON object::

    {"request_id", "incident", "patient_id", "vitals"?: {"systolic_bp", ...},
     "orders"?: [{"drug", "dose", "route"?, "frequency"?, "purpose"?}],
     "discontinue"?: [{"order_id", "reason"}]}

For the patient it first reviews the live orders (``get_patient``): when the systolic
blood pressure (the request's ``vitals``, else the monitor's, ``get_latest_vitals``) is
at or below :data:`LOW_SYSTOLIC_BP` (qSOFA's hypotension), every *active*
antihypertensive (:data:`~chorus_agents.icu.ward.ANTIHYPERTENSIVES`) is held, with the
reading and the incident as the reason. Then it places each order and discontinues
what it is told to.

The EHR's rules are the rules: an order beyond the drug's maximum dose, for a drug the
patient is allergic to (or a class of it), or a duplicate of a live order is refused by
the EHR, and the refusal is an outcome (``status: refused`` with the EHR's ``rule``),
reported once and not retried. Idempotency keys derive from the request
(``order:<request_id>:<drug>``, ``discontinue:<request_id>:<order_id>``) and the
incident (``hold:<incident>:<order_id>``), so a request asked again changes nothing twice.

Each outcome is one record on ``icu.medication-events`` (key: the patient id)::

    {"request_id", "incident", "patient_id", "action": "order"|"hold"|"discontinue",
     "drug", "status": "active"|"held"|"discontinued"|"refused", "order_id"?, "dose"?,
     "unit"?, "rule"?, "reason"}

and one ``decision`` audit record naming the incident and the order; the answer's data
part is ``{"request_id", "incident", "patient_id", "systolic_bp", "events": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.icu.common import (
    CLINICAL,
    MEDICATION_EVENTS,
    IcuError,
    number,
    refusal_rule,
    request_json,
    tool_json,
)
from chorus_agents.icu.ward import ANTIHYPERTENSIVES
from chorus_agents.tools import ToolResult

LOW_SYSTOLIC_BP = 100.0
"""mmHg: at or below it, antihypertensives are held (qSOFA's systolic criterion)."""


def holds_for(
    orders: Sequence[Mapping[str, Any]], systolic_bp: float | None, *, incident: str
) -> list[tuple[str, str, str]]:
    """``(order_id, drug, reason)`` of each active antihypertensive to hold (pure)."""
    if systolic_bp is None or systolic_bp > LOW_SYSTOLIC_BP:
        return []
    return [
        (
            str(order["order_id"]),
            str(order["drug"]),
            f"systolic BP {systolic_bp:g} mmHg (at or below {LOW_SYSTOLIC_BP:g}): "
            f"antihypertensive held during deterioration (incident {incident})",
        )
        for order in orders
        if order.get("drug") in ANTIHYPERTENSIVES and order.get("status") == "active"
    ]


class MedicationAgent(Handler):
    """The ``medication-management`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.events = topic_prefix + MEDICATION_EVENTS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        try:
            request_id = str(request["request_id"])
            patient_id = str(request["patient_id"])
        except KeyError as exc:
            raise IcuError(f"agent {ctx.agent}: a medication request without {exc}") from None
        incident = str(request.get("incident") or request_id)
        base = {"request_id": request_id, "incident": incident, "patient_id": patient_id}

        patient = tool_json(
            await ctx.tools.call(CLINICAL, "get_patient", {"patient_id": patient_id})
        )
        vitals = request.get("vitals")
        systolic = number(vitals.get("systolic_bp")) if isinstance(vitals, Mapping) else None
        if systolic is None:
            latest = tool_json(
                await ctx.tools.call(CLINICAL, "get_latest_vitals", {"patient_id": patient_id})
            )
            systolic = number((latest.get("vitals") or {}).get("systolic_bp", {}).get("value"))

        events: list[dict[str, Any]] = []
        live = [o for o in patient.get("medication_orders", []) if isinstance(o, Mapping)]
        for order_id, drug, reason in holds_for(live, systolic, incident=incident):
            result = await ctx.tools.call(
                CLINICAL,
                "hold_medication",
                {"order_id": order_id, "reason": reason},
                idempotency_key=f"hold:{incident}:{order_id}",
            )
            events.append(self._outcome(base, "hold", drug, result, reason=reason))

        for item in request.get("orders") or []:
            if not isinstance(item, Mapping) or not isinstance(item.get("drug"), str):
                raise IcuError(f"agent {ctx.agent}: an order without a drug: {item!r}")
            drug = item["drug"]
            arguments = {
                "patient_id": patient_id,
                "drug": drug,
                "dose": float(item.get("dose", 0)),
                "route": str(item.get("route", "iv")),
                "frequency": str(item.get("frequency", "once")),
            }
            result = await ctx.tools.call(
                CLINICAL,
                "order_medication",
                arguments,
                idempotency_key=f"order:{request_id}:{drug}",
            )
            reason = str(item.get("purpose") or "")
            events.append(self._outcome(base, "order", drug, result, reason=reason))

        for item in request.get("discontinue") or []:
            if not isinstance(item, Mapping) or "order_id" not in item:
                raise IcuError(f"agent {ctx.agent}: a discontinuation without an order_id")
            order_id, reason = str(item["order_id"]), str(item.get("reason") or "")
            result = await ctx.tools.call(
                CLINICAL,
                "discontinue_medication",
                {"order_id": order_id, "reason": reason},
                idempotency_key=f"discontinue:{request_id}:{order_id}",
            )
            drug = str(item.get("drug") or "")
            events.append(self._outcome(base, "discontinue", drug, result, reason=reason))

        for event in events:
            ctx.publish(self.events, event, key=patient_id)
            ctx.audit.record(
                "decision",
                action=event["action"],
                incident=incident,
                request_id=request_id,
                patient_id=patient_id,
                drug=event["drug"],
                status=event["status"],
                order_id=event.get("order_id"),
                rule=event.get("rule"),
                reason=event["reason"],
            )
        summary = ", ".join(f"{e['action']} {e['drug']}: {e['status']}" for e in events)
        return Reply(
            text=summary or "no medication change",
            data={**base, "systolic_bp": systolic, "events": events},
        )

    @staticmethod
    def _outcome(
        base: Mapping[str, Any], action: str, drug: str, result: ToolResult, *, reason: str
    ) -> dict[str, Any]:
        event: dict[str, Any] = {**base, "action": action, "drug": drug}
        if result.is_error:
            rule = refusal_rule(result.text)
            return {**event, "status": "refused", "rule": rule, "reason": result.text}
        order = tool_json(result)
        return {
            **event,
            "drug": order.get("drug", drug),
            "status": order["status"],
            "order_id": order["order_id"],
            "dose": order["dose"],
            "unit": order["unit"],
            "reason": order.get("reason") or reason,
        }
