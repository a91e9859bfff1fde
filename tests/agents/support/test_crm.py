"""The CRM: cases open, escalate and close by the rules, and refusals change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chorus_agents.support.crm import CUSTOMERS, CaseStatus, Crm, CrmRefused


def crm() -> Crm:
    return Crm(CUSTOMERS, clock=lambda: "t")


@pytest.mark.unit
def test_a_case_is_escalated_to_a_specialist_queue_then_closed() -> None:
    desk = crm()
    case = desk.open_case("cust-002", "late delivery")
    escalated = desk.escalate(case.case_id, "retention", "angry platinum customer")
    assert (escalated.status, escalated.queue) == (CaseStatus.ESCALATED, "retention")
    assert desk.close(case.case_id, "refunded").status is CaseStatus.CLOSED
    assert desk.cases("cust-002", open_only=True) == []
    assert [c.case_id for c in desk.cases("cust-002")] == [case.case_id]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("queue", "reason", "close_first", "escalate_first", "rule"),
    [
        ("billing", "x", True, False, "case_closed"),
        ("billing", "x", False, True, "already_escalated"),
        ("legal", "x", False, False, "unknown_queue"),
        ("billing", "  ", False, False, "reason"),
    ],
)
def test_an_escalation_breaking_a_rule_is_refused_naming_it(
    queue: str, reason: str, close_first: bool, escalate_first: bool, rule: str
) -> None:
    desk = crm()
    case = desk.open_case("cust-001", "double charge")
    if close_first:
        desk.close(case.case_id, "resolved")
    if escalate_first:
        desk.escalate(case.case_id, "technical", "bug")
    before = desk.case(case.case_id)
    with pytest.raises(CrmRefused) as refused:
        desk.escalate(case.case_id, queue, reason)
    assert refused.value.rule == rule
    assert desk.case(case.case_id) == before


@pytest.mark.unit
def test_unknown_customers_and_cases_and_closed_cases_are_refused() -> None:
    desk = crm()
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: desk.open_case("cust-999", "x"), "unknown_customer"),
        (lambda: desk.open_case("cust-001", ""), "subject"),
        (lambda: desk.escalate("case-00042", "billing", "x"), "unknown_case"),
        (lambda: desk.log_contact("cust-999", "chat", "x"), "unknown_customer"),
    ]
    for call, rule in calls:
        with pytest.raises(CrmRefused) as refused:
            call()
        assert refused.value.rule == rule
    assert desk.cases() == []
    case = desk.open_case("cust-003", "password")
    desk.close(case.case_id, "reset")
    with pytest.raises(CrmRefused) as refused:
        desk.close(case.case_id, "again")
    assert refused.value.rule == "case_closed"
    assert desk.case(case.case_id).note == "reset"


@pytest.mark.unit
def test_the_same_idempotency_key_acts_once() -> None:
    desk = crm()
    first = desk.open_case("cust-001", "late", idempotency_key="t1/s1")
    assert desk.open_case("cust-001", "late", idempotency_key="t1/s1") == first
    escalated = desk.escalate(first.case_id, "billing", "refund", idempotency_key="t1/s2")
    assert desk.escalate(first.case_id, "billing", "refund", idempotency_key="t1/s2") == escalated
    desk.log_contact("cust-001", "chat", "asked about order", idempotency_key="t1/s3")
    desk.log_contact("cust-001", "chat", "asked about order", idempotency_key="t1/s3")
    assert len(desk.contacts("cust-001")) == 1
    assert len(desk.cases()) == 1
