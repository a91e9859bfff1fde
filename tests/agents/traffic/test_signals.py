"""The signal controllers: timings within bounds, pre-emption, and refusals change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from chorus_agents.traffic.signals import MAX_CYCLE_SECONDS, SignalControllers, SignalRefused


def controllers() -> SignalControllers:
    return SignalControllers(clock=lambda: "t")


@pytest.mark.unit
def test_set_timing_changes_greens_and_the_cycle() -> None:
    signals = controllers()
    assert signals.timing("A2").cycle_seconds == 85.0
    timing = signals.set_timing("A2", {"east-west": 55})
    assert [p.green_seconds for p in timing.phases] == [55.0, 30.0]
    assert timing.cycle_seconds == 95.0
    assert signals.timing("A2") == timing
    assert [t.intersection_id for t in signals.neighbour_timings("A2")] == ["A1", "A3", "B2"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("intersection", "greens", "rule"),
    [
        ("C9", {"east-west": 40}, "unknown_intersection"),
        ("A1", {"left-turn": 20}, "unknown_phase"),
        ("A1", {}, "unknown_phase"),
        ("A1", {"east-west": 9}, "green_bounds"),
        ("A1", {"north-south": 61}, "green_bounds"),
        ("A1", {"east-west": 60, "north-south": 60}, "max_cycle"),
    ],
)
def test_a_timing_breaking_a_rule_is_refused_naming_it(
    intersection: str, greens: dict[str, float], rule: str
) -> None:
    signals = controllers()
    before = [signals.timing(i) for i in ("A1", "A2")]
    with pytest.raises(SignalRefused) as refused:
        signals.set_timing(intersection, greens)
    assert refused.value.rule == rule
    assert [signals.timing(i) for i in ("A1", "A2")] == before
    assert MAX_CYCLE_SECONDS == 120.0


@pytest.mark.unit
def test_preemption_holds_green_along_the_route_and_blocks_retiming_until_cleared() -> None:
    signals = controllers()
    preemption = signals.preempt("ambulance-7", ["A1", "A2", "B2"])
    assert preemption.greens == (("A1", "east-west"), ("A2", "north-south"), ("B2", "north-south"))
    assert signals.timing("A2").preempted_by == "ambulance-7"
    with pytest.raises(SignalRefused) as refused:
        signals.set_timing("A2", {"east-west": 40})
    assert refused.value.rule == "preemption_active"
    signals.clear("ambulance-7")
    assert signals.timing("A2").preempted_by is None
    assert signals.set_timing("A2", {"east-west": 40}).phases[0].green_seconds == 40.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("vehicle", "route", "rule"),
    [
        ("fire-2", ["A2", "A3"], "preemption_conflict"),
        ("ambulance-7", ["B1", "B2"], "preemption_conflict"),
        ("fire-2", ["B3"], "route"),
        ("fire-2", ["B1", "B3"], "route"),
        ("fire-2", ["B1", "Z9"], "unknown_intersection"),
    ],
)
def test_a_preemption_breaking_a_rule_is_refused_naming_it(
    vehicle: str, route: list[str], rule: str
) -> None:
    signals = controllers()
    signals.preempt("ambulance-7", ["A1", "A2"])
    before: list[Any] = [signals.timing(i) for i in ("A1", "A2", "A3", "B1", "B2", "B3")]
    with pytest.raises(SignalRefused) as refused:
        signals.preempt(vehicle, route)
    assert refused.value.rule == rule
    assert [signals.timing(i) for i in ("A1", "A2", "A3", "B1", "B2", "B3")] == before
    assert [p.vehicle_id for p in signals.preemptions()] == ["ambulance-7"]
    with pytest.raises(SignalRefused) as refused:
        signals.clear("fire-2")
    assert refused.value.rule == "unknown_preemption"


@pytest.mark.unit
def test_the_same_idempotency_key_acts_once() -> None:
    signals = controllers()
    first = signals.set_timing("B1", {"east-west": 50}, idempotency_key="t1/s1")
    signals.set_timing("B1", {"east-west": 35})
    assert signals.set_timing("B1", {"east-west": 50}, idempotency_key="t1/s1") == first
    assert signals.timing("B1").phases[0].green_seconds == 35.0
    held = signals.preempt("police-1", ["B1", "B2"], idempotency_key="t2/s1")
    assert signals.preempt("police-1", ["B1", "B2"], idempotency_key="t2/s1") == held
