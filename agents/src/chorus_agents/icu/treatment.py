"""``treatment-advice``: suggests a sepsis bundle for a high NEWS2 and has it ordered.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the EHR's ``get_patient`` tool) behind a small code-defined gate. It is asked by
``vital-signs`` with the assessment of a deterioration (JSON, see
:mod:`.vital_signs`):

- the pre-filter: an assessment in the *medium* or *high* band reaches the model; a lower
  one is advised ``action: none`` without a model call (with a real model, this saves a
  call per assessment);
- the model decides: its instructions suggest the bundle only for a high band, so it
  declines a medium one (the ward clinician reviews it, see :mod:`.coordination`); for a
  high one it looks the patient up and suggests the bundle: cultures, fluids, an
  antibiotic that respects the allergies. With the offline ``scripted`` provider, the
  spec's ``model.script`` (``ctx.model``) does so by matching the patient
  record's allergies. The bundle is the JSON object after ``BUNDLE`` in the answer
  (:func:`parse_bundle`);
- the gate asks ``medication-management`` by A2A to order the fluids and the
  antibiotic, with the assessment's vitals (from which it also holds antihypertensives),
  under the request id ``<incident>/sepsis-bundle``;
- it publishes the advice on ``icu.advice`` (key: the patient id)::

      {"incident", "patient_id", "score", "band", "action": "sepsis_bundle"|"none",
       "bundle"?, "answer"?, "medication"?, "reason"?}

  and audits a ``decision`` naming the incident (beside the loop's own ``model.call``,
  ``tool.call`` and ``decision`` records), and answers with the same as a data part.

Why a gate in code (as for the trading domain's ``compliance``): an instructed agent
neither publishes nor calls other agents; the gate decides only which assessments reach
the model (``ctx.model``, the spec's, its script included). The Agent keeps
``instructions`` and ``model`` in its spec; the gate uses the same :data:`INSTRUCTIONS`.
"""

from __future__ import annotations

import json
from typing import Any

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, Incoming, Reply
from chorus_agents.icu.common import (
    ADVICE,
    IcuError,
    answer_data,
    band_rank,
    dumps,
    request_json,
)

MEDICATION_AGENT = "medication-management"
"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the ICU's treatment advisor. You are shown a NEWS2 deterioration assessment "
    "of a patient. When the band is high, suspect sepsis: look the patient up with "
    "get_patient, then suggest the sepsis bundle: blood cultures before antibiotics, a "
    "crystalloid fluid bolus, and a broad-spectrum antibiotic the patient is not allergic "
    "to (by drug or drug class). Answer in one sentence, then BUNDLE and a JSON object "
    'with "cultures" (a list), "fluids" and "antibiotic" (each with drug, dose, route, '
    "frequency). Otherwise suggest no bundle."
)
BUNDLE_MARKER = "BUNDLE"


def parse_bundle(text: str) -> dict[str, Any] | None:
    """The JSON object after ``BUNDLE`` in the model's answer; ``None`` without one."""
    _, marker, rest = text.partition(BUNDLE_MARKER)
    if not marker:
        return None
    start, end = rest.find("{"), rest.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        found = json.loads(rest[start : end + 1])
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def medication_request(assessment: dict[str, Any], bundle: dict[str, Any]) -> dict[str, Any]:
    """What ``medication-management`` is asked to do for ``bundle`` (pure)."""
    incident = str(assessment["incident"])
    orders = []
    purposes = {"fluids": "fluid bolus", "antibiotic": "empirical antibiotic"}
    for part, purpose in purposes.items():
        item = bundle.get(part)
        if isinstance(item, dict) and isinstance(item.get("drug"), str):
            orders.append({**item, "purpose": f"sepsis bundle: {purpose} (incident {incident})"})
    return {
        "request_id": f"{incident}/sepsis-bundle",
        "incident": incident,
        "patient_id": assessment["patient_id"],
        "vitals": assessment.get("vitals") or {},
        "orders": orders,
    }


class TreatmentAdviceAgent(GatedInstructedAgent):
    """The ``treatment-advice`` agent; see the module docstring."""

    INSTRUCTIONS = INSTRUCTIONS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        assessment = request_json(message.text, message.data, agent=ctx.agent)
        incident, patient_id = assessment.get("incident"), assessment.get("patient_id")
        if not isinstance(incident, str) or not isinstance(patient_id, str):
            raise IcuError(f"agent {ctx.agent}: an assessment without incident or patient_id")
        band = str(assessment.get("band") or "")
        advice: dict[str, Any] = {
            "incident": incident,
            "patient_id": patient_id,
            "score": assessment.get("score"),
            "band": band,
            "action": "none",
        }
        if band_rank(band) < band_rank("medium"):
            advice["reason"] = f"NEWS2 band {band or 'unknown'}: no sepsis bundle"
            return self._done(advice, ctx)

        text = "Assessment from vital-signs:\n" + json.dumps(
            assessment, ensure_ascii=False, sort_keys=True
        )
        reply, _ = await self.consult(
            ctx, text, task_id=message.task_id, context_id=message.context_id
        )
        advice["answer"] = reply.text or ""
        bundle = parse_bundle(reply.text or "")
        if bundle is None:
            advice["reason"] = "the model suggested no bundle"
            return self._done(advice, ctx)
        request = medication_request(assessment, bundle)
        advice.update(action="sepsis_bundle", bundle=bundle)
        advice["medication"] = answer_data(
            await ctx.agents.ask(MEDICATION_AGENT, dumps(request)), agent=MEDICATION_AGENT
        )
        return self._done(advice, ctx)

    def _done(self, advice: dict[str, Any], ctx: Context) -> Reply:
        ctx.publish(self.topic(ADVICE), advice, key=advice["patient_id"])
        events = (advice.get("medication") or {}).get("events") or []
        ctx.audit.record(
            "decision",
            action=advice["action"],
            incident=advice["incident"],
            patient_id=advice["patient_id"],
            band=advice["band"],
            antibiotic=((advice.get("bundle") or {}).get("antibiotic") or {}).get("drug"),
            medication=[f"{e.get('action')} {e.get('drug')}: {e.get('status')}" for e in events],
        )
        return Reply(text=f"{advice['action']} for {advice['patient_id']}", data=advice)
