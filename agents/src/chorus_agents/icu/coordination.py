"""``care-coordination``: escalates deteriorating patients and gets observations done.

A code-defined agent answering A2A messages from ``vital-signs``. A request is a JSON
object, one of::

    {"kind": "deterioration", "incident", "patient_id", "score", "band", "reasons"?}
    {"kind": "missing_vitals", "incident", "patient_id", "missing": [...]}

A deterioration in the high band calls the rapid response team (``rapid_response``,
urgency ``emergency``); in the medium band the ward clinician reviews urgently
(``urgent_review``). Either way the responder takes over the patient's active monitor
alarms: each is acknowledged in the responder's name (``list_alarms``,
``acknowledge_alarm`` under the idempotency key ``ack:<incident>:<alarm id>``). Missing
vitals become an ``observation_request`` for the bedside nurse. A deterioration below
the medium band is not escalated (``vital-signs`` does not ask; asked, the answer is
``none`` and nothing is published).

Each escalation is one record on ``icu.escalations`` (key: the patient id)::

    {"incident", "patient_id", "kind": "rapid_response"|"urgent_review"|"observation_request",
     "team", "urgency", "score"?, "band"?, "reasons"?, "missing"?, "alarms_acknowledged"}

audited as a ``decision`` naming the incident, and answered as a data part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.icu.common import (
    CLINICAL,
    ESCALATIONS,
    IcuError,
    band_rank,
    refusal_rule,
    request_json,
    tool_json,
)

RAPID_RESPONSE_TEAM = "rapid-response-team"
WARD_CLINICIAN = "ward-clinician"
BEDSIDE_NURSE = "bedside-nurse"


def escalation_for(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """Who is called, and how urgently, for ``request`` (pure); ``None``: nobody."""
    base = {"incident": request.get("incident"), "patient_id": request.get("patient_id")}
    if request.get("kind") == "missing_vitals":
        missing = [str(m) for m in request.get("missing") or []]
        return {
            **base,
            "kind": "observation_request",
            "team": BEDSIDE_NURSE,
            "urgency": "prompt",
            "missing": missing,
            "note": f"take the missing observations: {', '.join(missing) or 'none named'}",
        }
    if request.get("kind") != "deterioration":
        return None
    band = str(request.get("band") or "")
    details = {"score": request.get("score"), "band": band, "reasons": request.get("reasons")}
    if band_rank(band) >= band_rank("high"):
        who = {"kind": "rapid_response", "team": RAPID_RESPONSE_TEAM, "urgency": "emergency"}
        return {**base, **details, **who}
    if band_rank(band) >= band_rank("medium"):
        who = {"kind": "urgent_review", "team": WARD_CLINICIAN, "urgency": "urgent"}
        return {**base, **details, **who}
    return None


class CareCoordinationAgent(Handler):
    """The ``care-coordination`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.escalations = topic_prefix + ESCALATIONS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        patient_id = request.get("patient_id")
        if not isinstance(patient_id, str):
            raise IcuError(f"agent {ctx.agent}: a request without a patient_id")
        incident = str(request.get("incident") or "")
        escalation = escalation_for(request)
        if escalation is None:
            answer = {"incident": incident, "patient_id": patient_id, "kind": "none"}
            ctx.audit.record("decision", action="none", incident=incident, patient_id=patient_id)
            return Reply(text="no escalation", data=answer)
        acknowledged: list[str] = []
        refused: list[dict[str, str]] = []
        if escalation["kind"] != "observation_request":
            alarms = tool_json(
                await ctx.tools.call(
                    CLINICAL, "list_alarms", {"patient_id": patient_id, "active_only": True}
                )
            )
            for alarm in alarms.get("alarms", []):
                alarm_id = str(alarm["alarm_id"])
                result = await ctx.tools.call(
                    CLINICAL,
                    "acknowledge_alarm",
                    {"alarm_id": alarm_id, "by": escalation["team"]},
                    idempotency_key=f"ack:{incident}:{alarm_id}",
                )
                if result.is_error:  # acknowledged meanwhile, by someone at the bedside
                    refused.append({"alarm_id": alarm_id, "rule": refusal_rule(result.text)})
                else:
                    acknowledged.append(alarm_id)
        escalation["alarms_acknowledged"] = acknowledged
        if refused:
            escalation["alarms_refused"] = refused
        ctx.publish(self.escalations, escalation, key=patient_id)
        ctx.audit.record(
            "decision",
            action=escalation["kind"],
            incident=incident,
            patient_id=patient_id,
            team=escalation["team"],
            urgency=escalation["urgency"],
            alarms_acknowledged=acknowledged,
        )
        return Reply(
            text=f"{escalation['kind']}: {escalation['team']} ({escalation['urgency']})",
            data=escalation,
        )
