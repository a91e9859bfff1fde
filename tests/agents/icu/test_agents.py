"""The ICU agents on real Kafka with the real clinical MCP server, from their manifests.

Signals are written to ``icu.signals`` as ``chorus_flink.jobs.icu`` writes them
(envelopes keyed by patient id, ``time`` the window's end, a ``news2_score`` and, when
the band rose, a ``deterioration`` for the same window); each test prefixes the domain
topics with its namespace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chorus_agents.handler import Handler
from chorus_agents.icu.clinical_server import build_server
from chorus_agents.icu.coordination import CareCoordinationAgent
from chorus_agents.icu.devices import DeviceGateway
from chorus_agents.icu.ehr import Ehr
from chorus_agents.icu.medication import MedicationAgent
from chorus_agents.icu.treatment import TreatmentAdviceAgent
from chorus_agents.icu.vital_signs import VitalSignsAgent
from chorus_agents.icu.ward import ward_devices, ward_ehr

from tests.agents.conftest import StartAgent, namespace
from tests.agents.domain_harness import DECLINES_ALL, DomainRun, chain
from tests.agents.icu.deploy import MANIFESTS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DOMAIN_TOPICS = (
    "icu.signals",
    "icu.assessments",
    "icu.advice",
    "icu.medication-events",
    "icu.escalations",
)
LOGIC: dict[str, Callable[[str], Handler]] = {
    "medication-management": lambda prefix: MedicationAgent(topic_prefix=prefix),
    "care-coordination": lambda prefix: CareCoordinationAgent(topic_prefix=prefix),
    "treatment-advice": lambda prefix: TreatmentAdviceAgent(topic_prefix=prefix),
    "vital-signs": lambda prefix: VitalSignsAgent(topic_prefix=prefix),
}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NORMAL = {
    "respiration_rate": 16.0,
    "spo2": 97.0,
    "supplemental_oxygen": False,
    "systolic_bp": 124.0,
    "pulse": 76.0,
    "consciousness": "A",
    "temperature": 37.0,
}


def _window(end_minute: int) -> tuple[str, str, str]:
    """A 5-minute window ending at ``end_minute``: its bounds as the data holds them (JSON
    timestamps) and its end as the envelope's ``time`` holds it."""
    end = START + timedelta(minutes=end_minute)
    start = end - timedelta(minutes=5)
    iso = end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return start.replace(tzinfo=None).isoformat(), end.replace(tzinfo=None).isoformat(), iso


def envelope(kind: str, patient: str, time: str, ns: str, data: dict[str, Any]) -> dict[str, Any]:
    """A signal as the Flink job writes it (the id made unique to the test)."""
    return {
        "specversion": "1.0",
        "id": f"{kind}:{patient}:{time}:{ns}",
        "source": "chorus_flink.jobs.icu",
        "type": f"dev.chorus.icu.{kind}",
        "kind": kind,
        "subject": patient,
        "time": time,
        "data": data,
    }


def score(
    patient: str, end: int, ns: str, value: int, band: str, previous: int | None, **vitals: Any
) -> dict[str, Any]:
    start, stop, time = _window(end)
    data: dict[str, Any] = {"window_start": start, "window_end": stop, "score": value}
    data |= {"band": band, **NORMAL, **vitals}
    if previous is not None:
        data["previous_score"] = previous
    return envelope("news2_score", patient, time, ns, data)


def deterioration(
    patient: str,
    end: int,
    ns: str,
    value: int,
    band: str,
    previous: tuple[int, str] | None,
    reason: str,
) -> dict[str, Any]:
    start, stop, time = _window(end)
    data: dict[str, Any] = {"window_start": start, "window_end": stop, "score": value}
    data |= {"band": band, "reason": reason}
    if previous is not None:
        data |= {"previous_score": previous[0], "previous_band": previous[1]}
    return envelope("deterioration", patient, time, ns, data)


def missing(patient: str, end: int, ns: str, names: str) -> dict[str, Any]:
    start, stop, time = _window(end)
    data = {"window_start": start, "window_end": stop, "missing": names}
    return envelope("missing_vitals", patient, time, ns, data)


class Ward(DomainRun):
    """The EHR and monitors, their MCP server, the four agents, the test's topics."""

    manifests = MANIFESTS
    signals_topic = "icu.signals"
    timeout = 120

    def __init__(self, kafka: Any, ns: str, ehr: Ehr, devices: DeviceGateway) -> None:
        super().__init__(kafka, ns)
        self.ehr = ehr
        self.devices = devices

    def about(self, name: str, incident: str) -> list[dict[str, Any]]:
        return [r for r in self.published(name) if r.get("incident") == incident]


@pytest.fixture
async def ward(kafka: Any, start_agent: StartAgent, request: Any) -> AsyncIterator[Ward]:
    """The ward; parametrized indirectly, with ``{agent: script}`` for other models."""
    found = Ward(kafka, namespace(), ward_ehr(), ward_devices())
    servers = {"clinical": build_server(found.ehr, found.devices)}
    scripts = getattr(request, "param", None)
    async with found.running(
        start_agent, topics=DOMAIN_TOPICS, servers=servers, logic=LOGIC, scripts=scripts
    ):
        yield found


def observe(devices: DeviceGateway, patient: str, vitals: dict[str, Any], time: str) -> None:
    """What the bedside monitor reports (numbers only: the gateway's parameters)."""
    for parameter, value in vitals.items():
        numeric = {"A": 0.0, False: 0.0, True: 1.0}.get(value, value)
        devices.observe(patient, parameter, float(numeric), time)


async def test_sepsis_is_escalated_treated_within_the_rules_and_traced(ward: Ward) -> None:
    ns, patient = ward.ns, "pt-002"  # allergic to penicillins, on amlodipine
    (amlodipine,) = ward.ehr.orders(patient, live_only=True)
    assert (amlodipine.drug, amlodipine.status) == ("amlodipine", "active")
    observe(ward.devices, patient, NORMAL, "2026-01-05T09:00:00Z")

    # pt-004's monitor lost its pulse and temperature leads
    gap = missing("pt-004", 10, ns, "pulse,temperature")
    first = score(patient, 10, ns, 1, "low", None, respiration_rate=21.0)
    medium_vitals = {"respiration_rate": 22.0, "pulse": 104.0, "temperature": 38.4}
    medium = score(patient, 20, ns, 5, "medium", 1, **medium_vitals)
    entered_medium = deterioration(
        patient, 20, ns, 5, "medium", (1, "low"), "entered_medium,score_rise"
    )
    ward.send(gap, first, medium, entered_medium)

    (review,) = await ward.until(lambda: ward.about("icu.escalations", entered_medium["id"]))
    assert (review["kind"], review["team"], review["urgency"]) == (
        "urgent_review", "ward-clinician", "urgent",
    )  # fmt: skip
    (observation,) = await ward.until(lambda: ward.about("icu.escalations", gap["id"]))
    assert observation["kind"] == "observation_request"
    assert observation["missing"] == ["pulse", "temperature"]
    (assessed,) = await ward.until(lambda: ward.about("icu.assessments", entered_medium["id"]))
    assert (assessed["action"], assessed["monitoring_interval_seconds"]) == ("escalate", 30)
    assert assessed["trend"] == {"direction": "rising", "change": 4, "scores": [1, 5]}
    assert assessed["vitals_source"] == "signal" and assessed["vitals"]["pulse"] == 104.0
    # the medium band reaches the model, which suggests no bundle for it
    assert assessed["advice"]["action"] == "none"
    assert assessed["advice"]["answer"] == "No sepsis bundle: the NEWS2 band is not high."
    assert ward.devices.interval(patient) == 30
    assert [o.drug for o in ward.ehr.orders(patient)] == ["amlodipine"]

    # septic shock: the monitor alarms on the blood pressure and the saturation
    shock = {"systolic_bp": 82.0, "spo2": 88.0, "pulse": 128.0, "respiration_rate": 28.0}
    observe(ward.devices, patient, {**medium_vitals, **shock}, "2026-01-05T09:29:00Z")
    assert len(ward.devices.alarms(patient, active_only=True)) == 2
    high_vitals = {**medium_vitals, **shock, "systolic_bp": 88.0, "supplemental_oxygen": True}
    high = score(patient, 30, ns, 11, "high", 5, **high_vitals)
    entered_high = deterioration(
        patient, 30, ns, 11, "high", (5, "medium"), "entered_high,score_rise"
    )
    ward.send(high, entered_high)

    (advice,) = await ward.until(lambda: ward.about("icu.advice", entered_high["id"]))
    assert advice["action"] == "sepsis_bundle"
    assert advice["bundle"]["antibiotic"]["drug"] == "meropenem"  # not a penicillin
    events = {e["action"] + " " + e["drug"]: e for e in advice["medication"]["events"]}
    assert set(events) == {"hold amlodipine", "order sodium chloride 0.9%", "order meropenem"}
    assert all(e["status"] != "refused" for e in events.values())

    held = ward.ehr.order(amlodipine.order_id)
    assert held.status == "held"
    assert "systolic BP 88 mmHg" in held.reason and entered_high["id"] in held.reason
    live = {o.drug: o for o in ward.ehr.orders(patient, live_only=True)}
    assert set(live) == {"amlodipine", "sodium chloride 0.9%", "meropenem"}
    assert (live["meropenem"].status, live["meropenem"].dose) == ("active", 1.0)
    assert ward.devices.interval(patient) == 15

    (rapid,) = await ward.until(lambda: ward.about("icu.escalations", entered_high["id"]))
    assert (rapid["kind"], rapid["team"], rapid["urgency"]) == (
        "rapid_response", "rapid-response-team", "emergency",
    )  # fmt: skip
    assert len(rapid["alarms_acknowledged"]) == 2
    assert ward.devices.alarms(patient, active_only=True) == []
    assert {a.acknowledged_by for a in ward.devices.alarms(patient)} == {"rapid-response-team"}
    medication = ward.about("icu.medication-events", entered_high["id"])
    assert sorted((e["action"], e["drug"], e["status"]) for e in medication) == [
        ("hold", "amlodipine", "held"),
        ("order", "meropenem", "active"),
        ("order", "sodium chloride 0.9%", "active"),
    ]

    # still rising: the bundle is suggested again, and the EHR refuses the duplicates
    worse = score(patient, 35, ns, 13, "high", 11, **high_vitals)
    rise = deterioration(patient, 35, ns, 13, "high", (11, "high"), "score_rise")
    ward.send(worse, rise)
    (again,) = await ward.until(lambda: ward.about("icu.advice", rise["id"]))
    refused = sorted((e["drug"], e["status"], e["rule"]) for e in again["medication"]["events"])
    assert refused == [
        ("meropenem", "refused", "duplicate_order"),
        ("sodium chloride 0.9%", "refused", "duplicate_order"),
    ]
    (third,) = await ward.until(lambda: ward.about("icu.assessments", rise["id"]))
    assert third["monitoring_interval_seconds"] == 15  # already at the band's interval
    assert third["trend"]["scores"] == [1, 5, 11, 13]
    assert len(ward.ehr.orders(patient)) == 3  # nothing new

    def settled() -> list[dict[str, Any]]:
        records = ward.audit()
        done = [
            r for r in records
            if r["kind"] == "event.handled" and r["agent"] == f"{ns}/vital-signs"
        ]  # fmt: skip
        return records if len(done) == 8 else []

    audit = await ward.until(settled)
    # each refused order was reported once, not retried
    orders = [
        r for r in audit
        if r["kind"] == "tool.call" and r["fields"].get("name") == "order_medication"
    ]  # fmt: skip
    assert sorted(r["fields"]["outcome"] for r in orders) == ["error", "error", "ok", "ok"]
    assert len({r["fields"]["idempotency_key"] for r in orders}) == 4
    assert len(ward.about("icu.medication-events", rise["id"])) == 2
    assert not [r for r in audit if r["kind"] == "error"]

    # from the medication hold back to the deterioration signal
    (hold,) = [
        r for r in audit
        if r["kind"] == "decision" and r["fields"].get("action") == "hold"
    ]  # fmt: skip
    assert hold["agent"] == f"{ns}/medication-management"
    assert hold["fields"]["incident"] == entered_high["id"]
    assert hold["fields"]["order_id"] == amlodipine.order_id
    steps = chain(audit, hold)
    kinds = [(r["agent"].split("/")[1], r["kind"]) for r in steps]
    assert ("medication-management", "tool.call") in kinds
    assert ("medication-management", "message.received") in kinds
    assert ("treatment-advice", "agent.call") in kinds
    assert ("treatment-advice", "message.received") in kinds
    assert ("vital-signs", "agent.call") in kinds
    received = steps[-1]
    assert (received["agent"], received["kind"]) == (f"{ns}/vital-signs", "event.received")
    assert received["fields"]["event_id"] == entered_high["id"]
    assert received["fields"]["topic"] == ward.topic("icu.signals")


@pytest.mark.parametrize("ward", [{"treatment-advice": DECLINES_ALL}], indirect=True)
async def test_a_model_that_declines_orders_no_bundle(ward: Ward) -> None:
    """A high band, another model (the spec's script replaced): it is asked, suggests no
    bundle, and nothing is ordered; the manifest's model has the bundle ordered (above)."""
    ns, patient = ward.ns, "pt-002"
    shock = {"systolic_bp": 88.0, "spo2": 88.0, "pulse": 128.0, "respiration_rate": 28.0}
    high = score(patient, 30, ns, 11, "high", 5, **shock)
    entered_high = deterioration(
        patient, 30, ns, 11, "high", (5, "medium"), "entered_high,score_rise"
    )
    ward.send(high, entered_high)

    (advice,) = await ward.until(lambda: ward.about("icu.advice", entered_high["id"]))
    assert (advice["action"], advice["band"]) == ("none", "high")
    assert advice["answer"] == "none: I decline to act on this." and "bundle" not in advice
    assert [o.drug for o in ward.ehr.orders(patient)] == ["amlodipine"]
    assert ward.about("icu.medication-events", entered_high["id"]) == []
    audit = await ward.until(
        lambda: [
            r
            for r in ward.audit()
            if r["agent"] == f"{ns}/treatment-advice" and r["kind"] == "model.call"
        ]
    )
    assert [r["fields"]["tool_calls"] for r in audit] == [[]]


async def test_a_quiet_ward_leads_to_no_action(ward: Ward) -> None:
    ns = ward.ns
    quiet = [
        score("pt-001", 10, ns, 0, "low", None),
        score("pt-003", 10, ns, 1, "low", None, pulse=92.0),
        score("pt-001", 15, ns, 1, "low", 0, respiration_rate=21.0),
        score("pt-003", 15, ns, 0, "low", 1),
    ]
    ward.send(*quiet)

    def handled() -> list[dict[str, Any]]:
        records = ward.audit()
        done = [r for r in records if r["kind"] == "event.handled"]
        return records if len(done) >= len(quiet) else []

    audit = await ward.until(handled)
    assert {r["agent"] for r in audit if r["kind"] == "event.handled"} == {f"{ns}/vital-signs"}
    for name in DOMAIN_TOPICS[1:]:
        assert ward.published(name) == [], name
    acting = {"agent.call", "tool.call", "tool.refused", "model.call", "decision"}
    assert [r for r in audit if r["kind"] in acting] == []
    assert {ward.devices.interval(p) for p in ("pt-001", "pt-003")} == {60}
    assert [o.status for o in ward.ehr.orders("pt-001")] == ["active"]
