"""The traffic agents' decisions without a broker: confirmation, retiming, corridors, script."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from chorus_agents.models import ChatMessage, ModelRequest
from chorus_agents.traffic.common import (
    CONGESTED_RATIO,
    FREE_FLOW_KMH,
    MIN_VEHICLES,
    Signal,
    TrafficError,
    assess_incident,
    intersection_of,
    phase_of,
    refusal_rule,
    signal_agent,
)
from chorus_agents.traffic.emergency import corridor, shortest_path
from chorus_agents.traffic.generator import Accident, readings
from chorus_agents.traffic.network import NEIGHBOURS, SEGMENTS, adjacent
from chorus_agents.traffic.public_transport import (
    InForce,
    PublicTransportAgent,
    lines_through,
    window_end,
)
from chorus_agents.traffic.signal_control import EXTENSION, approaches, retime
from chorus_agents.traffic.signals import (
    LOST_SECONDS_PER_PHASE,
    MAX_CYCLE_SECONDS,
    SignalControllers,
    default_phases,
)

from tests.agents.spec_models import spec_script

pytestmark = pytest.mark.unit

TIME = "2026-01-05T08:03:00.000Z"


def incident(a: str, b: str, speeds: tuple[float, float], vehicles: int = 30) -> dict[str, Any]:
    """An ``incident`` envelope as ``chorus_flink.jobs.traffic`` writes it."""
    return {
        "specversion": "1.0",
        "id": f"incident:{a}+{b}:{TIME}",
        "source": "chorus_flink.jobs.traffic",
        "type": "dev.chorus.traffic.incident",
        "kind": "incident",
        "subject": f"{a}+{b}",
        "time": TIME,
        "data": {
            "window_start": "2026-01-05T08:02:00",
            "window_end": "2026-01-05T08:03:00",
            "vehicles": vehicles,
            "segments": [a, b],
            "mean_speeds_kmh": list(speeds),
        },
    }


def phases() -> list[dict[str, Any]]:
    return [p.__dict__ for p in default_phases()]


def test_an_incident_is_confirmed_on_its_own_data() -> None:
    signal = Signal.parse(incident("A1-A2", "A2-B2", (16.2, 6.9)))
    assert signal is not None
    found = assess_incident(signal)
    assert found.confirmed and found.site == "A2-B2"  # the slower one: the accident
    assert found.intersections == ("A1", "A2", "B2")
    assert found.incident == signal.id
    for bad, why in (
        (incident("A1-A2", "B1-B2", (10.0, 10.0)), "not neighbours"),
        (incident("A1-A2", "X9-Y9", (10.0, 10.0)), "unknown segments X9-Y9"),
        (incident("A1-A2", "A2-B2", (30.0, 10.0)), "not both below 25"),
        (incident("A1-A2", "A2-B2", (10.0, 10.0), vehicles=12), "too few"),
    ):
        parsed = Signal.parse(bad)
        assert parsed is not None
        refused = assess_incident(parsed)
        assert not refused.confirmed and why in refused.reason
        assert refused.intersections == () and refused.site is None
    assert Signal.parse({"kind": "incident"}) is None


def test_names_phases_and_rules() -> None:
    assert signal_agent("B2") == "signal-control-b2"
    assert intersection_of("traffic/signal-control-b2") == "B2"
    with pytest.raises(TrafficError, match="signal-control-<id>"):
        intersection_of("traffic/emergency-response")
    assert phase_of("A1-A2") == "east-west" and phase_of("A2-B2") == "north-south"
    assert refusal_rule("pre-emption refused (preemption_conflict): B2 is ...") == (
        "preemption_conflict"
    )
    assert refusal_rule("Error: timeout") == "unknown"


def _apply(intersection: str, greens: dict[str, float]) -> float:
    """Sets ``greens`` on a fresh controller (which enforces the bounds); the new cycle."""
    return SignalControllers().set_timing(intersection, greens).cycle_seconds


def test_retiming_moves_green_to_the_congested_approach_and_keeps_the_cycle() -> None:
    segments = ("A1-A2", "A2-B2")
    cycle = sum(p.green_seconds + LOST_SECONDS_PER_PHASE for p in default_phases())
    ew, ns = (p.green_seconds for p in default_phases())
    # A2: the queue arrives along the avenue, the accident's segment leaves southwards.
    at_a2 = approaches("A2", segments)
    assert [(a["segment"], a["role"]) for a in at_a2] == [
        ("A1-A2", "inbound"),
        ("A2-B2", "outbound"),
    ]
    a2 = retime(phases(), at_a2)
    assert a2 == {"east-west": ew + EXTENSION, "north-south": ns - EXTENSION}
    # A1 feeds the queue: less green towards it, the cross street gets the seconds.
    a1 = retime(phases(), approaches("A1", segments))
    assert a1 == {"east-west": ew - EXTENSION, "north-south": ns + EXTENSION}
    # B2: the accident's segment arrives from the north.
    b2 = retime(phases(), approaches("B2", segments))
    assert b2 == {"east-west": ew - EXTENSION, "north-south": ns + EXTENSION}
    for intersection, greens in (("A2", a2), ("A1", a1), ("B2", b2)):
        assert _apply(intersection, greens) == cycle
    # B1 has nothing to do with it.
    assert approaches("B1", segments) == []
    assert retime(phases(), []) == {"east-west": ew, "north-south": ns}


def test_two_congested_approaches_lengthen_the_cycle_only_as_far_as_the_neighbours() -> None:
    both = approaches("B2", ("A2-B2", "B1-B2"))
    assert {a["role"] for a in both} == {"inbound"}
    ew, ns = (p.green_seconds for p in default_phases())
    cycle = ew + ns + 2 * LOST_SECONDS_PER_PHASE
    # Neighbours on the same cycle: nothing can grow without breaking the coordination.
    assert retime(phases(), both, neighbour_cycles=[cycle, cycle]) == {
        "east-west": ew,
        "north-south": ns,
    }
    # A neighbour already on a long cycle: both extensions fit.
    longer = retime(phases(), both, neighbour_cycles=[cycle, MAX_CYCLE_SECONDS])
    assert longer == {"east-west": ew + EXTENSION, "north-south": ns + EXTENSION}
    assert _apply("B2", longer) <= MAX_CYCLE_SECONDS
    # Halfway: the extensions shrink back to fit the neighbour's cycle.
    half = retime(phases(), both, neighbour_cycles=[cycle + EXTENSION])
    assert sum(half.values()) + 2 * LOST_SECONDS_PER_PHASE == cycle + EXTENSION


def test_the_corridor_runs_from_the_nearest_station_along_adjacent_intersections() -> None:
    unit, route = corridor("A2-B2")
    start, end = SEGMENTS["A2-B2"]
    assert route[-2:] == (start, end)  # enters the accident's segment at its start
    assert all(b in adjacent(a) for a, b in pairwise(route))
    assert (unit, route) == ("ems-east", ("A3", "A2", "B2"))
    assert corridor("A1-B1", {"only": "B3"}) == ("only", ("B3", "B2", "B1", "A1"))
    assert shortest_path("A1", "B3") == ("A1", "A2", "A3", "B3")
    with pytest.raises(TrafficError, match="not a segment"):
        corridor("A1-B3")


@pytest.mark.anyio
async def test_the_transit_script_reroutes_holds_or_does_nothing() -> None:
    model = spec_script("traffic", "public-transport")
    name = f"incident:A1-A2+A2-B2:{TIME}"
    record: dict[str, Any] = {
        "incident": name,
        "confirmed": True,
        "site": "A2-B2",
        "segments": ["A1-A2", "A2-B2"],
        "action": "respond",
    }

    async def ask(value: dict[str, Any], *facts: str) -> str:
        text = "Event on traffic.incidents (key A1-A2+A2-B2):\n" + json.dumps(value)
        text += "".join("\n" + fact for fact in facts)
        answer = await model.complete(ModelRequest(messages=(ChatMessage(role="user", text=text),)))
        assert answer.tool_calls == ()
        return answer.text

    assert lines_through("A2-B2") == ["30"]
    reroute = await ask(record, "Lines through the site: 30", "Lines through the queue: 10")
    assert reroute.startswith("reroute: lines 30 ") and name in reroute
    hold = await ask(record, "Lines through the queue: 10")
    assert hold.startswith("hold: lines 10 ")
    assert (await ask(record)).startswith("none:")
    assert (await ask({**record, "confirmed": False}, "Lines through the site: 30")).startswith(
        "none:"
    )
    # the same jam a minute on: with the detour in force, the model declines to repeat it
    in_force = f"In force for A2-B2: reroute since incident {name}: {reroute}"
    again = await ask(record, "Lines through the site: 30", in_force)
    assert again == f"none: the reroute around A2-B2 is already in force (since incident {name})"


def test_an_advisory_is_in_force_while_its_sites_incidents_keep_coming() -> None:
    agent = PublicTransportAgent()
    nine = datetime(2026, 1, 5, 9, 0)
    agent.in_force["A2-B2"] = InForce("incident:a", "reroute", "reroute: lines 30", nine)
    shown = agent.shown_in_force("A2-B2", "incident:b", nine + timedelta(minutes=1))
    assert shown is not None and shown.incident == "incident:a"
    # its own advisory, handled again (a transaction aborted), is not "in force"
    assert agent.shown_in_force("A2-B2", "incident:a", nine) is None
    # a jam that cleared (no incident for more than three minutes), another site, no time
    assert agent.shown_in_force("A2-B2", "incident:c", nine + timedelta(minutes=4)) is None
    assert agent.shown_in_force("A1-A2", "incident:b", nine + timedelta(minutes=1)) is None
    assert agent.shown_in_force("A2-B2", "incident:b", None) is None
    assert window_end({"window_end": "2026-01-05T09:01:00"}) == nine + timedelta(minutes=1)
    assert window_end({"window_end": "soon"}) is None


def test_the_generators_accident_is_confirmed_with_the_accident_as_its_site() -> None:
    """The job's rule applied to generated readings (as in ``chorus_flink.jobs.traffic``):
    every incident it would signal around an accident is confirmed, sited on the accident."""
    accident = Accident("A2-B2", at_seconds=120.0)
    windows: dict[tuple[str, datetime], list[tuple[int, float]]] = defaultdict(list)
    for reading in readings(seconds=900.0, incidents=(accident,)):
        start = reading.event_time.replace(second=0, microsecond=0)
        windows[(reading.segment_id, start)].append((reading.vehicle_count, reading.avg_speed_kmh))
    congested: dict[tuple[str, datetime], tuple[int, float]] = {}
    for key, counted in windows.items():
        vehicles = sum(c for c, _ in counted)
        if vehicles >= MIN_VEHICLES:
            mean = sum(c * v for c, v in counted) / vehicles
            if mean < CONGESTED_RATIO * FREE_FLOW_KMH:
                congested[key] = (vehicles, mean)
    signals = []
    for (a, start), (vehicles, mean) in sorted(congested.items()):
        for b in NEIGHBOURS[a]:
            other = congested.get((b, start))
            if a < b and other is not None:
                signal = Signal.parse(incident(a, b, (mean, other[1]), vehicles + other[0]))
                assert signal is not None
                signals.append(signal)
    assert signals, "the accident never jams two neighbouring segments in one window"
    for signal in signals:
        assessed = assess_incident(signal)
        assert assessed.confirmed, assessed.reason
        assert assessed.site == accident.segment_id
        assert set(assessed.segments) == {accident.segment_id, accident.queue_segment}
