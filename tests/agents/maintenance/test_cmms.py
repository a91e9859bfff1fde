"""The maintenance management system: each rule refuses what it should, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chorus_agents.maintenance.cmms import (
    FLEET,
    MaintenanceRefused,
    MaintenanceSystem,
    ProductionSlot,
    WorkOrderStatus,
)

STOCK = {"bearing-6205": 1, "bearing-6308": 0, "seal-kit-p1": 2}
SLOTS = (
    ProductionSlot("s1", "press-01", "panel", "2026-01-05T06:00+00:00", "2026-01-05T14:00+00:00"),
    ProductionSlot("s2", "press-02", "panel", "2026-01-05T06:00+00:00", "2026-01-05T14:00+00:00"),
)


def system() -> MaintenanceSystem:
    return MaintenanceSystem(FLEET, STOCK, SLOTS, clock=lambda: "t")


def snapshot(cmms: MaintenanceSystem) -> tuple[Any, ...]:
    return (cmms.work_orders(), cmms.inventory(), cmms.schedule())


@pytest.mark.unit
def test_a_work_order_goes_from_open_to_completed() -> None:
    cmms = system()
    order = cmms.open_work_order("press-01", "bearing_wear", "high", parts=["bearing-6205"])
    assert order.status is WorkOrderStatus.OPEN
    cmms.assign(order.work_order_id, "ana")
    cmms.reserve_part(order.work_order_id, "bearing-6205")
    assert cmms.inventory()["bearing-6205"] == 0
    scheduled = cmms.schedule_work_order(order.work_order_id, "2026-01-05T14:00+00:00")
    assert scheduled.status is WorkOrderStatus.SCHEDULED
    assert scheduled.parts_reserved == ("bearing-6205",)
    done = cmms.complete(order.work_order_id)
    assert done.status is WorkOrderStatus.COMPLETED
    assert cmms.work_orders("press-01", open_only=True) == []
    # Completed, so the same failure mode may be opened again.
    assert cmms.open_work_order("press-01", "bearing_wear", "low").work_order_id == "wo-000002"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"machine_id": "lathe-9", "failure_mode": "x", "priority": "low"}, "unknown_machine"),
        ({"machine_id": "press-01", "failure_mode": "x", "priority": "asap"}, "priority"),
        ({"machine_id": "press-01", "failure_mode": " ", "priority": "low"}, "failure_mode"),
        (
            {"machine_id": "press-01", "failure_mode": "x", "priority": "low", "parts": ["nut"]},
            "unknown_part",
        ),
    ],
)
def test_opening_a_bad_work_order_is_refused_naming_the_rule(
    kwargs: dict[str, Any], rule: str
) -> None:
    cmms = system()
    with pytest.raises(MaintenanceRefused) as refused:
        cmms.open_work_order(**kwargs)
    assert refused.value.rule == rule
    assert cmms.work_orders() == []


@pytest.mark.unit
def test_one_open_work_order_per_machine_and_failure_mode() -> None:
    cmms = system()
    first = cmms.open_work_order("press-01", "bearing_wear", "high")
    cmms.open_work_order("press-01", "overheating", "medium")  # another mode: fine
    cmms.open_work_order("press-02", "bearing_wear", "medium")  # another machine: fine
    before = snapshot(cmms)
    with pytest.raises(MaintenanceRefused) as refused:
        cmms.open_work_order("press-01", "bearing_wear", "critical")
    assert refused.value.rule == "one_open_per_failure_mode"
    assert first.work_order_id in str(refused.value)
    assert snapshot(cmms) == before


@pytest.mark.unit
def test_reserving_takes_stock_and_an_empty_shelf_is_refused() -> None:
    cmms = system()
    one = cmms.open_work_order("press-01", "bearing_wear", "high", parts=["bearing-6205"])
    two = cmms.open_work_order("press-02", "bearing_wear", "high", parts=["bearing-6205"])
    cmms.reserve_part(one.work_order_id, "bearing-6205")
    before = snapshot(cmms)
    for order_id, part, rule in [
        (two.work_order_id, "bearing-6205", "out_of_stock"),
        (one.work_order_id, "bearing-6205", "already_reserved"),
        (one.work_order_id, "seal-kit-p1", "part_not_needed"),
        (one.work_order_id, "gasket", "unknown_part"),
        ("wo-999999", "bearing-6205", "unknown_work_order"),
    ]:
        with pytest.raises(MaintenanceRefused) as refused:
            cmms.reserve_part(order_id, part)
        assert refused.value.rule == rule
        assert snapshot(cmms) == before


@pytest.mark.unit
def test_scheduling_needs_a_technician_and_every_part() -> None:
    cmms = system()
    order = cmms.open_work_order(
        "cnc-01", "spindle_wear", "high", parts=["seal-kit-p1", "bearing-6308"]
    )
    wo = order.work_order_id
    with pytest.raises(MaintenanceRefused) as refused:
        cmms.schedule_work_order(wo, "2026-01-05T14:00+00:00")
    assert refused.value.rule == "not_assigned"
    cmms.assign(wo, "ben")
    cmms.reserve_part(wo, "seal-kit-p1")
    before = snapshot(cmms)
    with pytest.raises(MaintenanceRefused, match="still needs bearing-6308") as refused:
        cmms.schedule_work_order(wo, "2026-01-05T14:00+00:00")
    assert refused.value.rule == "parts_not_reserved"
    with pytest.raises(MaintenanceRefused) as refused:
        cmms.schedule_work_order(wo, "after lunch")
    assert refused.value.rule == "time"
    assert snapshot(cmms) == before


@pytest.mark.unit
def test_a_completed_work_order_cannot_change() -> None:
    cmms = system()
    wo = cmms.open_work_order("pump-01", "leak", "low").work_order_id
    with pytest.raises(MaintenanceRefused) as refused:
        cmms.complete(wo)
    assert refused.value.rule == "not_assigned"
    cmms.assign(wo, "cy")
    cmms.complete(wo)
    before = snapshot(cmms)
    calls: list[Callable[[], object]] = [lambda: cmms.complete(wo), lambda: cmms.assign(wo, "d")]
    for call in calls:
        with pytest.raises(MaintenanceRefused) as refused:
            call()
        assert refused.value.rule == "completed"
    assert snapshot(cmms) == before


@pytest.mark.unit
def test_production_moves_keep_length_and_avoid_critical_machines_and_overlaps() -> None:
    cmms = system()
    moved = cmms.move_slot("s1", "press-01", "2026-01-05T08:00+00:00")
    assert (moved.start, moved.end) == ("2026-01-05T08:00+00:00", "2026-01-05T16:00+00:00")
    critical = cmms.open_work_order("cnc-01", "bearing_wear", "critical").work_order_id
    cmms.open_work_order("cnc-02", "bearing_wear", "high")  # not critical: still usable
    before = snapshot(cmms)
    for slot, machine, start, rule in [
        ("s1", "cnc-01", "2026-01-05T06:00+00:00", "critical_work_order"),
        ("s1", "press-02", "2026-01-05T13:59+00:00", "slot_overlap"),
        ("s9", "press-02", "2026-01-05T06:00+00:00", "unknown_slot"),
        ("s1", "nope", "2026-01-05T06:00+00:00", "unknown_machine"),
    ]:
        with pytest.raises(MaintenanceRefused) as refused:
            cmms.move_slot(slot, machine, start)
        assert refused.value.rule == rule
        assert snapshot(cmms) == before
    assert cmms.move_slot("s1", "cnc-02", "2026-01-05T06:00+00:00").machine_id == "cnc-02"
    cmms.assign(critical, "ana")
    cmms.complete(critical)
    assert cmms.move_slot("s2", "cnc-01", "2026-01-05T06:00+00:00").machine_id == "cnc-01"


@pytest.mark.unit
def test_a_slot_is_planned_once_on_a_known_machine_over_no_other() -> None:
    cmms = system()
    run = ProductionSlot(
        "r1", "press-01", "panel", "2026-01-05T14:00+00:00", "2026-01-05T16:00+00:00", firm=True
    )
    assert cmms.plan_slot(run) == run
    assert cmms.plan_slot(run) == run  # the same slot again changes nothing
    assert [s.slot_id for s in cmms.schedule("press-01")] == ["s1", "r1"]
    before = snapshot(cmms)
    for slot, rule in [
        (ProductionSlot("r1", "press-02", "panel", run.start, run.end), "slot_exists"),
        (
            ProductionSlot("r2", "press-01", "panel", "2026-01-05T13:00+00:00", run.end),
            "slot_overlap",
        ),
        (ProductionSlot("r3", "press-01", "panel", run.end, run.start), "time"),
        (ProductionSlot("r4", "nope", "panel", run.start, run.end), "unknown_machine"),
    ]:
        with pytest.raises(MaintenanceRefused) as refused:
            cmms.plan_slot(slot)
        assert refused.value.rule == rule
        assert snapshot(cmms) == before


@pytest.mark.unit
def test_the_same_idempotency_key_acts_once() -> None:
    cmms = system()
    first = cmms.open_work_order("press-01", "bearing_wear", "high", idempotency_key="t1/s1")
    again = cmms.open_work_order("press-01", "bearing_wear", "high", idempotency_key="t1/s1")
    assert again == first
    part = cmms.open_work_order("press-02", "x", "low", parts=["seal-kit-p1", "seal-kit-p1"])
    cmms.reserve_part(part.work_order_id, "seal-kit-p1", idempotency_key="t2/s1")
    cmms.reserve_part(part.work_order_id, "seal-kit-p1", idempotency_key="t2/s1")
    assert cmms.inventory()["seal-kit-p1"] == 1
    moved = cmms.move_slot("s1", "press-01", "2026-01-05T07:00+00:00", idempotency_key="t3/s1")
    assert cmms.move_slot("s1", "press-01", "2026-01-05T09:00+00:00", idempotency_key="t3/s1") == (
        moved
    )
    assert len(cmms.work_orders()) == 2
