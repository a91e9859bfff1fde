"""The traffic agents on real Kafka with the real signals MCP server, from their manifests.

Signals are written to ``traffic.signals`` as ``chorus_flink.jobs.traffic`` writes them
(envelopes keyed by subject: a segment for ``congestion``, ``<a>+<b>`` for ``incident``);
each test prefixes the domain topics with its namespace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from chorus_agents.handler import Handler
from chorus_agents.trace import flatten, trace
from chorus_agents.traffic.common import MANAGED_INTERSECTIONS, phase_of, signal_agent
from chorus_agents.traffic.emergency import EmergencyAgent, corridor
from chorus_agents.traffic.monitoring import MonitoringAgent
from chorus_agents.traffic.network import INTERSECTIONS, NEIGHBOURS, SEGMENTS
from chorus_agents.traffic.public_transport import PublicTransportAgent, lines_through
from chorus_agents.traffic.signal_control import SignalControlAgent
from chorus_agents.traffic.signals import MAX_CYCLE_SECONDS, SignalControllers, default_phases
from chorus_agents.traffic.signals_server import build_server

from tests.agents.conftest import StartAgent, namespace
from tests.agents.domain_harness import DECLINES_ALL, DomainRun, chain
from tests.agents.traffic.deploy import MANIFESTS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DOMAIN_TOPICS = (
    "traffic.signals",
    "traffic.incidents",
    "traffic.signal-plans",
    "traffic.dispatch",
    "traffic.transit-advisories",
)
SIGNAL_AGENTS = tuple(signal_agent(i) for i in MANAGED_INTERSECTIONS)
# Callees first, the monitor (which calls them) last: agents start in this order.
LOGIC: dict[str, Callable[[str], Handler]] = {
    **{name: (lambda prefix: SignalControlAgent(topic_prefix=prefix)) for name in SIGNAL_AGENTS},
    "emergency-response": lambda prefix: EmergencyAgent(topic_prefix=prefix),
    "public-transport": lambda prefix: PublicTransportAgent(topic_prefix=prefix),
    "traffic-monitoring": lambda prefix: MonitoringAgent(topic_prefix=prefix),
}
WINDOW = ("2026-01-05T08:02:00", "2026-01-05T08:03:00")
TIME = "2026-01-05T08:03:00.000Z"


def congestion(segment: str, ns: str, vehicles: int, speed: float) -> dict[str, Any]:
    """A ``congestion`` envelope as the Flink job writes it (the id made unique to the test)."""
    return {
        "specversion": "1.0",
        "id": f"congestion:{segment}:{TIME}:{ns}",
        "source": "chorus_flink.jobs.traffic",
        "type": "dev.chorus.traffic.congestion",
        "kind": "congestion",
        "subject": segment,
        "time": TIME,
        "data": {
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "segment_id": segment,
            "vehicles": vehicles,
            "flow_per_hour": vehicles * 3600 / 60,
            "mean_speed_kmh": speed,
            "speed_ratio": speed / 50.0,
        },
    }


def a_minute_later(signal: dict[str, Any]) -> dict[str, Any]:
    """The job's next ``incident`` for the same jam: its window a minute on."""
    shift = timedelta(minutes=1)
    start, end = (
        (datetime.fromisoformat(signal["data"][k]) + shift).isoformat(timespec="seconds")
        for k in ("window_start", "window_end")
    )
    time = end + ".000Z"
    return {
        **signal,
        "id": signal["id"].replace(signal["time"], time),
        "time": time,
        "data": {**signal["data"], "window_start": start, "window_end": end},
    }


def incident(a: dict[str, Any], b: dict[str, Any], ns: str) -> dict[str, Any]:
    """The ``incident`` the job writes for two adjacent congested segments (``a`` < ``b``)."""
    first, second = a["data"], b["data"]
    subject = f"{first['segment_id']}+{second['segment_id']}"
    return {
        "specversion": "1.0",
        "id": f"incident:{subject}:{TIME}:{ns}",
        "source": "chorus_flink.jobs.traffic",
        "type": "dev.chorus.traffic.incident",
        "kind": "incident",
        "subject": subject,
        "time": TIME,
        "data": {
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "vehicles": first["vehicles"] + second["vehicles"],
            "segments": [first["segment_id"], second["segment_id"]],
            "mean_speeds_kmh": [first["mean_speed_kmh"], second["mean_speed_kmh"]],
        },
    }


class City(DomainRun):
    """The signal controllers, their server, the seven agents, the test's topics."""

    manifests = MANIFESTS
    signals_topic = "traffic.signals"
    timeout = 120

    def __init__(self, kafka: Any, ns: str, controllers: SignalControllers) -> None:
        super().__init__(kafka, ns)
        self.controllers = controllers


@pytest.fixture
async def city(kafka: Any, start_agent: StartAgent, request: Any) -> AsyncIterator[City]:
    """The city; parametrized indirectly, with ``{agent: script}`` for other models."""
    found = City(kafka, namespace(), SignalControllers())
    servers = {"signals": build_server(found.controllers)}
    scripts = getattr(request, "param", None)
    async with found.running(
        start_agent, topics=DOMAIN_TOPICS, servers=servers, logic=LOGIC, scripts=scripts
    ):
        yield found


def greens(controllers: SignalControllers, intersection: str) -> dict[str, float]:
    return {p.name: p.green_seconds for p in controllers.timing(intersection).phases}


async def test_an_accident_gets_a_corridor_retimed_signals_and_a_bus_advisory(city: City) -> None:
    ns = city.ns
    # The generator's accident on A2-B2 with its queue spilling back onto A1-A2.
    queue = congestion("A1-A2", ns, vehicles=18, speed=16.4)
    accident = congestion("A2-B2", ns, vehicles=12, speed=6.9)
    signal = incident(queue, accident, ns)
    city.send(queue, accident, signal)

    (record,) = await city.until(lambda: city.published("traffic.incidents"))
    assert (record["incident"], record["action"], record["confirmed"]) == (
        signal["id"],
        "respond",
        True,
    )
    assert record["site"] == "A2-B2"
    affected = sorted(set(SEGMENTS["A1-A2"]) | set(SEGMENTS["A2-B2"]))
    assert record["intersections"] == affected
    assert {p["intersection"]: p["status"] for p in record["plans"]} == dict.fromkeys(
        affected, "retimed"
    )

    # The pre-emption corridor is set on the controllers, for the incident's vehicle.
    unit, route = corridor("A2-B2")
    (preemption,) = city.controllers.preemptions()
    assert preemption.route == route
    assert preemption.vehicle_id == f"{unit}/{signal['id']}"
    assert record["dispatch"]["status"] == "preempted"
    assert record["dispatch"]["vehicle_id"] == preemption.vehicle_id
    (dispatch,) = city.published("traffic.dispatch")
    assert (dispatch["incident"], dispatch["route"]) == (signal["id"], list(route))

    # The intersections around the incident are retimed within their bounds.
    default = {p.name: p.green_seconds for p in default_phases()}
    for intersection in affected:
        timing = city.controllers.timing(intersection)
        assert timing.cycle_seconds <= MAX_CYCLE_SECONDS
        for phase in timing.phases:
            assert phase.min_green <= phase.green_seconds <= phase.max_green
        assert greens(city.controllers, intersection) != default, intersection
    # A2: more green for the queue arriving along the avenue; B2: for the accident's segment.
    assert greens(city.controllers, "A2")[phase_of("A1-A2")] > default[phase_of("A1-A2")]
    assert greens(city.controllers, "B2")[phase_of("A2-B2")] > default[phase_of("A2-B2")]
    # A1 feeds the queue: less green into it.
    assert greens(city.controllers, "A1")[phase_of("A1-A2")] < default[phase_of("A1-A2")]
    for untouched in sorted(set(INTERSECTIONS) - set(affected)):
        assert greens(city.controllers, untouched) == default, untouched
    plans = city.published("traffic.signal-plans")
    assert sorted(p["intersection"] for p in plans) == affected
    assert {p["incident"] for p in plans} == {signal["id"]}
    for plan in plans:
        assert plan["after"] == greens(city.controllers, plan["intersection"])

    # Public transport reroutes the line through the accident's segment.
    (advisory,) = await city.until(lambda: city.published("traffic.transit-advisories"))
    assert (advisory["incident"], advisory["action"]) == (signal["id"], "reroute")
    assert advisory["lines"]["site"] == lines_through("A2-B2")
    assert advisory["advisory"].startswith("reroute: lines " + ", ".join(lines_through("A2-B2")))

    # The audit chain: from the pre-emption back to the incident signal.
    def complete() -> list[dict[str, Any]]:
        records = city.audit()
        agents = {
            r["agent"]
            for r in records
            if r["kind"] == "decision" and r["fields"].get("incident") == signal["id"]
        }
        wanted = {f"{ns}/traffic-monitoring", f"{ns}/emergency-response", f"{ns}/public-transport"}
        return records if wanted <= agents else []

    audit = await city.until(complete)
    decisions = {
        r["agent"].split("/")[1]: r
        for r in audit
        if r["kind"] == "decision" and r["fields"].get("incident") == signal["id"]
    }
    assert set(decisions) >= {"traffic-monitoring", "emergency-response", "public-transport"}
    assert {n for n in decisions if n.startswith("signal-control-")} == {
        signal_agent(i) for i in affected
    }
    preempt = decisions["emergency-response"]
    assert preempt["fields"]["action"] == "preempt"
    assert preempt["fields"]["vehicle_id"] == preemption.vehicle_id
    steps = chain(audit, preempt)
    kinds = [(r["agent"].split("/")[1], r["kind"]) for r in steps]
    assert ("emergency-response", "tool.call") in kinds
    assert ("emergency-response", "message.received") in kinds
    assert ("traffic-monitoring", "agent.call") in kinds
    received = steps[-1]
    assert (received["agent"], received["kind"]) == (f"{ns}/traffic-monitoring", "event.received")
    assert received["fields"]["topic"] == city.topic("traffic.signals")
    assert received["fields"]["offset"] == 2  # the incident, after the two congestions
    # every retiming and the bus advisory hang off the same signal
    for name in [signal_agent(i) for i in affected] + ["public-transport"]:
        assert chain(audit, decisions[name])[-1]["id"] == received["id"], name
    assert decisions["traffic-monitoring"]["fields"]["corridor"] == list(route)
    # `chorus trace <signal id>`: one tree, rooted at the signal, reaching the pre-emption.
    (traced,) = trace(audit, signal["id"])
    assert traced.chain[0]["id"] == received["id"]
    rows = [record for _, record in flatten(traced.tree)]
    assert any(
        r["agent"] == f"{ns}/emergency-response"
        and r["kind"] == "tool.call"
        and r["fields"]["name"] == "preempt_route"
        and r["fields"]["outcome"] == "ok"
        for r in rows
    ), [(r["agent"], r["kind"]) for r in rows]

    # A minute later the jam is still there: the model is shown the detour in force and
    # declines to advise it again (the manifest's script, as in every default run).
    later = a_minute_later(signal)
    city.send(later)
    advisories = await city.until(
        lambda: len(found := city.published("traffic.transit-advisories")) == 2 and found
    )
    assert (advisories[1]["incident"], advisories[1]["action"]) == (later["id"], "none")
    assert advisories[1]["advisory"] == (
        f"none: the reroute around A2-B2 is already in force (since incident {signal['id']})"
    )


@pytest.mark.parametrize("city", [{"public-transport": DECLINES_ALL}], indirect=True)
async def test_a_model_that_declines_advises_no_bus(city: City) -> None:
    """The same accident, another model (the spec's script replaced): it is asked and
    declines, so the advisory is ``none``; the manifest's model reroutes (above)."""
    queue = congestion("A1-A2", city.ns, vehicles=18, speed=16.4)
    accident = congestion("A2-B2", city.ns, vehicles=12, speed=6.9)
    signal = incident(queue, accident, city.ns)
    city.send(queue, accident, signal)

    (advisory,) = await city.until(lambda: city.published("traffic.transit-advisories"))
    assert (advisory["incident"], advisory["action"]) == (signal["id"], "none")
    assert advisory["advisory"] == "none: I decline to act on this."
    assert advisory["lines"]["site"] == lines_through("A2-B2")  # there were lines to move


async def test_quiet_traffic_leads_to_no_action(city: City) -> None:
    ns = city.ns
    # Busy but apart: two congested segments that are not neighbours, so no incident.
    quiet = [
        congestion("A1-B1", ns, vehicles=14, speed=22.0),
        congestion("A2-A3", ns, vehicles=20, speed=24.5),
    ]
    assert "A2-A3" not in NEIGHBOURS["A1-B1"]
    city.send(*quiet)

    def handled() -> list[dict[str, Any]]:
        records = city.audit()
        done = [
            r
            for r in records
            if r["kind"] == "event.handled" and r["agent"] == f"{ns}/traffic-monitoring"
        ]
        return records if len(done) >= len(quiet) else []

    audit = await city.until(handled)
    for name in DOMAIN_TOPICS[1:]:
        assert city.published(name) == [], name
    assert city.controllers.preemptions() == []
    default = {p.name: p.green_seconds for p in default_phases()}
    for intersection in INTERSECTIONS:
        assert greens(city.controllers, intersection) == default, intersection
    acting = {"agent.call", "tool.call", "tool.refused", "model.call", "decision"}
    assert [r for r in audit if r["kind"] in acting] == []
