"""The EHR: medication orders by the rules, and refusals change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from chorus_agents.icu.ehr import PATIENTS, Ehr, MedicationRefused, OrderStatus


def ehr() -> Ehr:
    return Ehr(PATIENTS, clock=lambda: "t")


@pytest.mark.unit
def test_an_order_is_held_then_discontinued() -> None:
    chart = ehr()
    order = chart.prescribe("pt-001", "meropenem", 1.0, frequency="q8h")
    assert (order.status, order.unit) == (OrderStatus.ACTIVE, "g")
    assert chart.hold(order.order_id, "renal function pending").status is OrderStatus.HELD
    assert chart.discontinue(order.order_id, "de-escalated").status is OrderStatus.DISCONTINUED
    assert chart.orders("pt-001", live_only=True) == []
    # Discontinued, so the drug may be ordered again.
    assert chart.prescribe("pt-001", "meropenem", 2.0).order_id == "med-00002"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"patient_id": "pt-404", "drug": "meropenem", "dose": 1.0}, "unknown_patient"),
        ({"patient_id": "pt-001", "drug": "aspirin", "dose": 1.0}, "unknown_drug"),
        ({"patient_id": "pt-001", "drug": "meropenem", "dose": 0.0}, "dose"),
        ({"patient_id": "pt-001", "drug": "meropenem", "dose": 2.5}, "max_dose"),
        ({"patient_id": "pt-002", "drug": "piperacillin-tazobactam", "dose": 4.5}, "allergy"),
        ({"patient_id": "pt-003", "drug": "vancomycin", "dose": 1.0}, "allergy"),
        ({"patient_id": "pt-004", "drug": "paracetamol", "dose": 1.0}, "duplicate_order"),
    ],
)
def test_an_order_breaking_a_rule_is_refused_naming_it(kwargs: dict[str, Any], rule: str) -> None:
    chart = ehr()
    existing = chart.prescribe("pt-004", "paracetamol", 1.0)
    chart.hold(existing.order_id, "fever down")  # held still counts as live
    before = {p.patient_id: chart.orders(p.patient_id) for p in PATIENTS}
    with pytest.raises(MedicationRefused) as refused:
        chart.prescribe(**kwargs)
    assert refused.value.rule == rule
    assert {p.patient_id: chart.orders(p.patient_id) for p in PATIENTS} == before


@pytest.mark.unit
def test_holding_needs_a_reason_and_an_active_order() -> None:
    chart = ehr()
    order = chart.prescribe("pt-001", "noradrenaline", 0.1, frequency="continuous")
    for order_id, reason, rule in [
        (order.order_id, " ", "hold_reason"),
        ("med-99999", "x", "unknown_order"),
    ]:
        with pytest.raises(MedicationRefused) as refused:
            chart.hold(order_id, reason)
        assert refused.value.rule == rule
    assert chart.order(order.order_id).status is OrderStatus.ACTIVE
    chart.discontinue(order.order_id)
    with pytest.raises(MedicationRefused) as refused:
        chart.hold(order.order_id, "surgery")
    assert refused.value.rule == "not_active"
    with pytest.raises(MedicationRefused) as refused:
        chart.discontinue(order.order_id)
    assert refused.value.rule == "discontinued"
    assert chart.order(order.order_id).status is OrderStatus.DISCONTINUED


@pytest.mark.unit
def test_the_same_idempotency_key_orders_once() -> None:
    chart = ehr()
    first = chart.prescribe("pt-002", "vancomycin", 1.5, idempotency_key="t1/s1")
    assert chart.prescribe("pt-002", "vancomycin", 1.5, idempotency_key="t1/s1") == first
    held = chart.hold(first.order_id, "level high", idempotency_key="t1/s2")
    assert chart.hold(first.order_id, "level high", idempotency_key="t1/s2") == held
    assert len(chart.orders("pt-002")) == 1
