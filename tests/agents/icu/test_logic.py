"""The ICU agents' decisions without a broker: assessment, holds, escalation, the script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chorus_agents.icu.common import Signal, band_rank, refusal_rule
from chorus_agents.icu.coordination import escalation_for
from chorus_agents.icu.ehr import MedicationRefused
from chorus_agents.icu.medication import holds_for
from chorus_agents.icu.treatment import medication_request, parse_bundle
from chorus_agents.icu.vital_signs import PatientState, assess, trend
from chorus_agents.icu.ward import ANTIHYPERTENSIVES, ward_ehr
from chorus_agents.models import ChatMessage, ModelRequest, ToolSpec

from tests.agents.spec_models import spec_script

pytestmark = pytest.mark.unit

TIME = "2026-01-05T09:30:00.000Z"


def deterioration(score: int, band: str, previous: int | None, reason: str) -> Signal:
    data: dict[str, Any] = {"score": score, "band": band, "reason": reason}
    if previous is not None:
        data["previous_score"] = previous
    found = Signal.parse(
        {"id": f"deterioration:pt-002:{TIME}", "kind": "deterioration", "subject": "pt-002",
         "time": TIME, "data": data}
    )  # fmt: skip
    assert found is not None
    return found


def test_signals_parse_and_bands_rank() -> None:
    signal = deterioration(7, "high", 5, "entered_high,score_rise")
    assert (signal.patient_id, signal.score, signal.previous_score) == ("pt-002", 7, 5)
    assert signal.reasons == ("entered_high", "score_rise")
    gap = Signal.parse({"id": "m", "kind": "missing_vitals", "subject": "pt-004",
                        "data": {"missing": "pulse,temperature"}})  # fmt: skip
    assert gap is not None and gap.missing == ("pulse", "temperature")
    assert Signal.parse({"kind": "news2_score"}) is None
    assert Signal.parse(b"not json") is None
    assert band_rank("high") > band_rank("medium") > band_rank("low-medium") > band_rank("low")
    assert band_rank(None) == -1


def test_trend_and_assessment_prefer_the_scored_windows_vitals() -> None:
    assert trend([1, 5], 5, 1) == {"direction": "rising", "change": 4, "scores": [1, 5]}
    assert trend([], 3, None) == {"direction": "steady", "change": 0, "scores": [3]}
    signal = deterioration(8, "high", 5, "entered_high")
    remembered = PatientState(window_time=TIME, vitals={"systolic_bp": 88.0})
    remembered.scores.extend([1, 5, 8])
    monitor = {
        "monitoring_interval_seconds": 60,
        "vitals": {"systolic_bp": {"parameter": "systolic_bp", "value": 95.0, "time": "t"}},
    }
    found = assess(signal, remembered=remembered, monitor=monitor)
    assert (found["action"], found["monitoring_interval_seconds"]) == ("escalate", 15)
    assert (found["vitals"], found["vitals_source"]) == ({"systolic_bp": 88.0}, "signal")
    assert found["trend"]["scores"] == [1, 5, 8]
    stale = PatientState(window_time="2026-01-05T09:25:00.000Z", vitals={"systolic_bp": 120.0})
    fallback = assess(signal, remembered=stale, monitor=monitor)
    assert (fallback["vitals"], fallback["vitals_source"]) == ({"systolic_bp": 95.0}, "monitor")
    # a rise inside the low band is watched; a shorter interval is never lengthened
    low = assess(
        deterioration(3, "low", 1, "score_rise"),
        remembered=None,
        monitor={"monitoring_interval_seconds": 20},
    )
    assert (low["action"], low["monitoring_interval_seconds"], low["vitals_source"]) == (
        "watch", 20, "none",
    )  # fmt: skip


def test_antihypertensives_are_held_only_when_the_systolic_bp_is_low() -> None:
    orders = [
        {"order_id": "med-1", "drug": "amlodipine", "status": "active"},
        {"order_id": "med-2", "drug": "labetalol", "status": "held"},
        {"order_id": "med-3", "drug": "meropenem", "status": "active"},
    ]
    assert "amlodipine" in ANTIHYPERTENSIVES and "meropenem" not in ANTIHYPERTENSIVES
    ((order_id, drug, reason),) = holds_for(orders, 88.0, incident="sig-1")
    assert (order_id, drug) == ("med-1", "amlodipine")
    assert "systolic BP 88 mmHg" in reason and "sig-1" in reason
    assert holds_for(orders, 100.0, incident="x") != []
    assert holds_for(orders, 101.0, incident="x") == []
    assert holds_for(orders, None, incident="x") == []


def test_escalation_by_band_and_for_missing_vitals() -> None:
    base = {"kind": "deterioration", "incident": "i", "patient_id": "pt-002"}
    high = escalation_for({**base, "band": "high", "score": 9})
    medium = escalation_for({**base, "band": "medium", "score": 5})
    assert high is not None and (high["kind"], high["team"]) == (
        "rapid_response", "rapid-response-team",
    )  # fmt: skip
    assert medium is not None and medium["kind"] == "urgent_review"
    assert escalation_for({**base, "band": "low-medium"}) is None
    gap = escalation_for({"kind": "missing_vitals", "incident": "m", "patient_id": "pt-004",
                          "missing": ["pulse"]})  # fmt: skip
    assert gap is not None and (gap["kind"], gap["missing"]) == ("observation_request", ["pulse"])


def test_the_ward_ehr_refuses_by_rule_and_the_rule_is_read_back() -> None:
    ehr = ward_ehr()
    assert [o.drug for o in ehr.orders("pt-002")] == ["amlodipine"]
    with pytest.raises(MedicationRefused) as refused:
        ehr.prescribe("pt-002", "piperacillin-tazobactam", 4.5)
    assert refused.value.rule == "allergy"
    with pytest.raises(MedicationRefused) as too_much:
        ehr.prescribe("pt-001", "meropenem", 4.0)
    assert too_much.value.rule == "max_dose"
    text = f"Error executing tool order_medication: medication order refused (allergy): {refused}"
    assert refusal_rule(text) == "allergy"
    assert refusal_rule("nothing to see") == "unknown"


def test_the_bundle_is_read_from_the_answer_and_turned_into_orders() -> None:
    answer = 'Sepsis. BUNDLE {"fluids": {"drug": "sodium chloride 0.9%", "dose": 500}, ' \
        '"antibiotic": {"drug": "meropenem", "dose": 1.0}, "cultures": ["blood"]}'  # fmt: skip
    bundle = parse_bundle(answer)
    assert bundle is not None and bundle["antibiotic"]["drug"] == "meropenem"
    assert parse_bundle("No sepsis bundle: the NEWS2 band is not high.") is None
    assert parse_bundle("BUNDLE {not json}") is None
    request = medication_request(
        {"incident": "sig-1", "patient_id": "pt-002", "vitals": {"systolic_bp": 88.0}}, bundle
    )
    assert request["request_id"] == "sig-1/sepsis-bundle"
    assert [o["drug"] for o in request["orders"]] == ["sodium chloride 0.9%", "meropenem"]
    assert all("sig-1" in o["purpose"] for o in request["orders"])
    assert request["vitals"] == {"systolic_bp": 88.0}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("allergies", "antibiotic"),
    [
        (["penicillins"], "meropenem"),
        (["beta-lactams"], "vancomycin"),
        (["vancomycin"], "piperacillin-tazobactam"),
        ([], "piperacillin-tazobactam"),
    ],
)
async def test_the_treatment_script_respects_the_allergies(
    allergies: list[str], antibiotic: str
) -> None:
    model = spec_script("icu", "treatment-advice")
    tools = (ToolSpec(name="get_patient", description="", input_schema={}),)
    assessment = {"incident": "sig-1", "patient_id": "pt-009", "band": "high", "score": 9,
                  "previous_band": "medium"}  # fmt: skip
    text = "Assessment from vital-signs:\n" + json.dumps(assessment, sort_keys=True)
    ask = ChatMessage(role="user", text=text)
    first = await model.complete(ModelRequest(messages=(ask,), tools=tools))
    (call,) = first.tool_calls
    assert (call.name, call.arguments) == ("get_patient", {"patient_id": "pt-009"})
    record = {"patient_id": "pt-009", "allergies": allergies, "medication_orders": []}
    result = ChatMessage(role="tool", text=json.dumps(record, indent=2), tool_call_id=call.id)
    answer = await model.complete(
        ModelRequest(messages=(ask, first.as_message(), result), tools=tools)
    )
    assert answer.tool_calls == ()
    bundle = parse_bundle(answer.text)
    assert bundle is not None and bundle["antibiotic"]["drug"] == antibiotic
    assert bundle["fluids"]["dose"] <= 1000  # within the EHR's maximum single dose


@pytest.mark.anyio
async def test_the_treatment_script_declines_below_the_high_band() -> None:
    model = spec_script("icu", "treatment-advice")
    tools = (ToolSpec(name="get_patient", description="", input_schema={}),)
    for band in ("medium", "low"):
        assessment = {"band": band, "patient_id": "pt-002", "previous_band": "high"}
        text = "Assessment from vital-signs:\n" + json.dumps(assessment, sort_keys=True)
        answer = await model.complete(
            ModelRequest(messages=(ChatMessage(role="user", text=text),), tools=tools)
        )
        assert answer.tool_calls == ()
        assert answer.text.startswith("No sepsis bundle")
