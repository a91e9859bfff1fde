"""The maintenance agents on real Kafka with the real maintenance MCP server, from their manifests.

Signals are written to ``maintenance.signals`` as ``chorus_flink.jobs.maintenance`` writes
them (envelopes keyed by machine id, null data fields left out); each test prefixes the
domain topics with its namespace.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.handler import Handler
from chorus_agents.maintenance.cmms import FLEET, MaintenanceSystem, WorkOrderStatus
from chorus_agents.maintenance.cmms_server import DEFAULT_STOCK, build_server, default_slots
from chorus_agents.maintenance.common import answer_data
from chorus_agents.maintenance.monitoring import EquipmentMonitor
from chorus_agents.maintenance.planning import MaintenancePlanner
from chorus_agents.maintenance.production import ProductionScheduler
from chorus_agents.trace import flatten, trace

from tests.agents.conftest import Connect, StartAgent, namespace, user_text
from tests.agents.domain_harness import DECLINES_ALL, DomainRun, chain
from tests.agents.maintenance.deploy import MANIFESTS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DAY = datetime(2026, 1, 5, tzinfo=UTC)
DOMAIN_TOPICS = (
    "maintenance.signals",
    "maintenance.diagnoses",
    "maintenance.work-orders",
    "maintenance.schedule",
)
AGENTS = ("production-scheduling", "maintenance-planning", "equipment-monitoring")
LOGIC: dict[str, Callable[[str], Handler]] = {
    "production-scheduling": lambda prefix: ProductionScheduler(topic_prefix=prefix),
    "maintenance-planning": lambda prefix: MaintenancePlanner(topic_prefix=prefix),
    "equipment-monitoring": lambda prefix: EquipmentMonitor(topic_prefix=prefix),
}


def signal(kind: str, machine: str, time: str, ns: str, **data: Any) -> dict[str, Any]:
    """An envelope as the Flink job writes it (the id made unique to the test)."""
    return {
        "specversion": "1.0",
        "id": f"{kind}:{machine}:{time}:{ns}",
        "source": "chorus_flink.jobs.maintenance",
        "type": f"dev.chorus.maintenance.{kind}",
        "kind": kind,
        "subject": machine,
        "time": time,
        "data": data,
    }


def anomaly(machine: str, second: int, ns: str, *, vibration: float, temperature: float,
            vibration_z: float, temperature_z: float) -> dict[str, Any]:  # fmt: skip
    """An ``anomaly`` at 09:30:<second> against a history near 1.5 mm/s and 48 °C."""
    return signal(
        "anomaly", machine, f"2026-01-05T09:30:{second:02d}.000Z", ns,
        score=max(abs(vibration_z), abs(temperature_z)), readings=20,
        vibration=vibration, vibration_mean=1.5, vibration_stddev=0.1, vibration_z=vibration_z,
        temperature=temperature, temperature_mean=48.0, temperature_stddev=0.4,
        temperature_z=temperature_z,
    )  # fmt: skip


def alert(machine: str, first: int, last: int, ns: str, max_score: float) -> dict[str, Any]:
    return signal(
        "maintenance_alert", machine, f"2026-01-05T09:30:{last:02d}.000Z", ns,
        first_time=f"2026-01-05T09:30:{first:02d}", last_time=f"2026-01-05T09:30:{last:02d}",
        max_score=max_score, anomalies=3,
    )  # fmt: skip


class Plant(DomainRun):
    """The maintenance system (today's shifts on 2026-01-05), its server, the agents, topics."""

    manifests = MANIFESTS
    signals_topic = "maintenance.signals"
    timeout = 120

    def __init__(self, kafka: Any, ns: str, cmms: MaintenanceSystem) -> None:
        super().__init__(kafka, ns)
        self.cmms = cmms


@pytest.fixture
async def plant(kafka: Any, start_agent: StartAgent, request: Any) -> AsyncIterator[Plant]:
    """The plant; parametrized indirectly, with ``{agent: script}`` for other models."""
    cmms = MaintenanceSystem(FLEET, DEFAULT_STOCK, default_slots(DAY))
    found = Plant(kafka, namespace(), cmms)
    servers = {"cmms": build_server(cmms)}
    scripts = getattr(request, "param", None)
    async with found.running(
        start_agent, topics=DOMAIN_TOPICS, servers=servers, logic=LOGIC, scripts=scripts
    ):
        yield found


def bearing_run(ns: str, seconds: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Three vibration-led anomalies on press-01: the bearing, before the heat follows."""
    levels = ((3.9, 24.0, 48.3, 0.8), (5.6, 41.0, 48.9, 2.2), (7.4, 59.0, 49.6, 4.0))
    return [
        anomaly("press-01", second, ns, vibration=v, vibration_z=vz, temperature=t,
                temperature_z=tz)
        for second, (v, vz, t, tz) in zip(seconds, levels, strict=True)
    ]  # fmt: skip


async def test_a_bearing_alert_opens_a_supplied_work_order_and_moves_production(
    plant: Plant,
) -> None:
    ns = plant.ns
    first = alert("press-01", 5, 15, ns, max_score=59.0)
    plant.send(*bearing_run(ns, (5, 10, 15)), first)

    (order,) = await plant.until(lambda: plant.published("maintenance.work-orders"))
    assert order["signal_id"] == first["id"]
    assert (order["machine_id"], order["failure_mode"], order["priority"]) == (
        "press-01",
        "bearing_wear",
        "critical",
    )
    assert (order["status"], order["parts_reserved"], order["technician"]) == (
        "scheduled",
        ["bearing-6205"],
        "tech-ana",
    )
    assert order["window"] == {"start": "2026-01-05T10:00+00:00", "end": "2026-01-05T14:00+00:00"}
    assert order["production"]["moved_slot_ids"] == ["press-01-shift-1"]

    # the maintenance system agrees: one work order, supplied and scheduled; production moved
    (opened,) = plant.cmms.work_orders()
    assert opened.work_order_id == order["work_order_id"]
    assert (opened.status, opened.parts_reserved) == (WorkOrderStatus.SCHEDULED, ("bearing-6205",))
    assert opened.scheduled_for == "2026-01-05T10:00+00:00"
    assert plant.cmms.inventory()["bearing-6205"] == DEFAULT_STOCK["bearing-6205"] - 1
    assert [s.slot_id for s in plant.cmms.schedule("press-01")] == ["press-01-shift-2"]
    moved = next(s for s in plant.cmms.schedule("press-02") if s.slot_id == "press-01-shift-1")
    assert (moved.start, moved.end) == ("2026-01-05T22:00+00:00", "2026-01-06T06:00+00:00")

    (schedule,) = plant.published("maintenance.schedule")
    assert (schedule["signal_id"], schedule["work_order_id"], schedule["action"]) == (
        first["id"],
        opened.work_order_id,
        "move",
    )
    (move,) = schedule["moves"]
    assert (move["from_machine"], move["to_machine"], move["moved"]) == (
        "press-01",
        "press-02",
        True,
    )
    (diagnosis,) = await plant.until(lambda: plant.published("maintenance.diagnoses"))
    assert (diagnosis["signal_id"], diagnosis["leading"]) == (first["id"], "vibration")
    assert diagnosis["evidence"]["anomalies_seen"] == 3
    assert diagnosis["plan"]["work_order_id"] == opened.work_order_id

    # the failure goes on: the next run's alert finds the work order and adds nothing
    second = alert("press-01", 20, 30, ns, max_score=12.0)
    plant.send(*bearing_run(ns, (20, 25, 30)), second)
    again = await plant.until(
        lambda: [
            d for d in plant.published("maintenance.diagnoses") if d["signal_id"] == second["id"]
        ]
    )
    assert again[0]["plan"]["status"] == "existing"
    assert again[0]["plan"]["work_order_id"] == opened.work_order_id
    assert len(plant.cmms.work_orders()) == 1
    assert plant.cmms.inventory()["bearing-6205"] == DEFAULT_STOCK["bearing-6205"] - 1
    assert len(plant.published("maintenance.schedule")) == 1

    audit = await plant.until(
        lambda: (
            (records := plant.audit())
            and any(
                r["kind"] == "decision"
                and r["fields"].get("signal_id") == second["id"]
                and r["agent"] == f"{ns}/equipment-monitoring"
                for r in records
            )
            and records
        )
    )
    decisions = {
        r["agent"].split("/")[1]: r
        for r in audit
        if r["kind"] == "decision" and r["fields"].get("signal_id") == first["id"]
    }
    assert set(decisions) == set(AGENTS)
    for decision in decisions.values():
        assert decision["fields"]["work_order_id"] == opened.work_order_id
    assert decisions["maintenance-planning"]["fields"]["action"] == "scheduled"
    assert decisions["production-scheduling"]["fields"]["moved_slot_ids"] == ["press-01-shift-1"]
    # from the work order back to the alert: planner <- monitor's call <- the event
    steps = chain(audit, decisions["maintenance-planning"])
    kinds = [(r["agent"].split("/")[1], r["kind"]) for r in steps]
    assert ("maintenance-planning", "tool.call") in kinds
    assert ("maintenance-planning", "message.received") in kinds
    assert ("equipment-monitoring", "agent.call") in kinds
    received = steps[-1]
    assert (received["agent"], received["kind"]) == (f"{ns}/equipment-monitoring", "event.received")
    assert received["fields"]["topic"] == plant.topic("maintenance.signals")
    assert received["fields"]["offset"] == 3  # the alert, after its three anomalies
    # production's move hangs off the same event, through the planner's call
    moves = chain(audit, decisions["production-scheduling"])
    assert ("maintenance-planning", "agent.call") in [
        (r["agent"].split("/")[1], r["kind"]) for r in moves
    ]
    assert moves[-1]["id"] == received["id"]
    assert any(
        r["kind"] == "tool.call"
        and r["agent"] == f"{ns}/production-scheduling"
        and r["fields"].get("name") == "move_production_slot"
        for r in moves
    )
    # `chorus trace <signal id>` roots at the alert and reaches the work order and the move
    (traced,) = trace(audit, first["id"])
    assert traced.chain[0]["id"] == received["id"]
    caused = [record for _, record in flatten(traced.tree)]
    assert {r["fields"].get("work_order_id") for r in caused} >= {opened.work_order_id}
    assert decisions["production-scheduling"] in caused
    # and `chorus trace <work order id>` finds both alerts that led to it
    roots = [t.chain[0] for t in trace(audit, opened.work_order_id)]
    assert sorted((r["kind"], r["fields"]["offset"]) for r in roots) == [
        ("event.received", 3),
        ("event.received", 7),
    ]


@pytest.mark.parametrize("plant", [{"production-scheduling": DECLINES_ALL}], indirect=True)
async def test_a_model_that_declines_moves_no_production(plant: Plant) -> None:
    """The same alert, another model (the spec's script replaced): the work order is
    opened all the same (code), the scheduler's model is asked about the overlapping slot,
    declines, and production stays where it was; the manifest's model moves it (above)."""
    first = alert("press-01", 5, 15, plant.ns, max_score=59.0)
    plant.send(*bearing_run(plant.ns, (5, 10, 15)), first)

    (order,) = await plant.until(lambda: plant.published("maintenance.work-orders"))
    assert order["status"] == "scheduled" and order["production"]["moved_slot_ids"] == []
    (schedule,) = plant.published("maintenance.schedule")
    assert schedule["action"] == "none"
    (move,) = schedule["moves"]
    assert (move["slot_id"], move["moved"]) == ("press-01-shift-1", False)
    assert move["answer"] == "none: I decline to act on this."
    assert [s.slot_id for s in plant.cmms.schedule("press-01")] == [
        "press-01-shift-1",
        "press-01-shift-2",
    ]
    audit = await plant.until(
        lambda: [
            r
            for r in plant.audit()
            if r["kind"] == "decision"
            and r["agent"] == f"{plant.ns}/production-scheduling"
            and "action" in r["fields"]
        ]
    )
    assert [(r["fields"]["action"], r["fields"]["slot_id"]) for r in audit] == [
        ("none", "press-01-shift-1")
    ]


async def test_isolated_anomalies_lead_to_no_work_order(plant: Plant) -> None:
    ns = plant.ns
    isolated = [
        anomaly("press-01", 5, ns, vibration=2.2, vibration_z=3.4, temperature=48.1,
                temperature_z=0.3),
        anomaly("cnc-02", 6, ns, vibration=1.4, vibration_z=0.2, temperature=50.5,
                temperature_z=3.2),
        anomaly("press-01", 20, ns, vibration=2.3, vibration_z=3.6, temperature=48.0,
                temperature_z=0.1),
    ]  # fmt: skip
    plant.send(*isolated)

    def handled() -> list[dict[str, Any]]:
        records = plant.audit()
        done = [r for r in records if r["kind"] == "event.handled"]
        return records if len(done) >= len(isolated) else []

    audit = await plant.until(handled)
    assert {r["agent"] for r in audit if r["kind"] == "event.handled"} == {
        f"{ns}/equipment-monitoring"
    }
    for name in DOMAIN_TOPICS[1:]:
        assert plant.published(name) == [], name
    assert plant.cmms.work_orders() == []
    assert plant.cmms.inventory() == dict(sorted(DEFAULT_STOCK.items()))
    assert [s.slot_id for s in plant.cmms.schedule("press-01")] == [
        "press-01-shift-1",
        "press-01-shift-2",
    ]
    acting = {"agent.call", "tool.call", "tool.refused", "model.call", "decision"}
    assert [r for r in audit if r["kind"] in acting] == []


async def test_a_bearing_without_a_spare_leaves_the_work_order_awaiting_parts(plant: Plant) -> None:
    ns = plant.ns
    run = [
        anomaly("pump-01", second, ns, vibration=v, vibration_z=z, temperature=47.0,
                temperature_z=0.5)
        for second, v, z in ((40, 3.0, 15.0), (45, 3.8, 23.0), (50, 4.6, 31.0))
    ]  # fmt: skip
    pump = alert("pump-01", 40, 50, ns, max_score=31.0)
    plant.send(*run, pump)

    (order,) = await plant.until(lambda: plant.published("maintenance.work-orders"))
    assert (order["signal_id"], order["machine_id"], order["priority"]) == (
        pump["id"],
        "pump-01",
        "high",
    )
    assert order["status"] == "awaiting_parts"
    assert order["missing_parts"] == [{"part_id": "bearing-6308", "rule": "out_of_stock"}]
    assert "production" not in order
    (opened,) = plant.cmms.work_orders("pump-01")
    assert (opened.status, opened.technician) == (WorkOrderStatus.ASSIGNED, "tech-chen")
    assert opened.parts_reserved == ()
    (diagnosis,) = await plant.until(lambda: plant.published("maintenance.diagnoses"))
    assert diagnosis["plan"]["status"] == "awaiting_parts"
    # nothing to schedule, so production was not asked
    assert plant.published("maintenance.schedule") == []


async def test_a_diagnosis_sent_twice_changes_the_plant_once(plant: Plant, caller: Connect) -> None:
    ns = plant.ns
    diagnosis = {
        "diagnosis_id": f"maintenance_alert:cnc-01:x:{ns}/diagnosis",
        "signal_id": f"maintenance_alert:cnc-01:x:{ns}",
        "machine_id": "cnc-01",
        "time": "2026-01-05T12:10:00.000Z",
        "failure_mode": "bearing_wear",
        "priority": "high",
    }
    planner = plant.hosts["maintenance-planning"].card
    assert planner is not None
    connection = await caller(ns)
    answers = []
    for _ in range(2):  # as the monitor asks again for a redelivered alert
        answer = await connection.transport(
            planner, planner.supported_interfaces[0].url
        ).send_message(SendMessageRequest(message=user_text(json.dumps(diagnosis))))
        answers.append(answer_data(answer.task, agent="maintenance-planning"))
    first, again = answers
    assert first["status"] == again["status"] == "scheduled"
    assert first["work_order_id"] == again["work_order_id"]
    assert first["window"] == {"start": "2026-01-05T13:00+00:00", "end": "2026-01-05T17:00+00:00"}
    # the window crosses both shifts: the morning one goes to cnc-02 (a high priority work
    # order lets cnc-01 keep producing), the afternoon one waits for the repair
    assert first["production"]["moved_slot_ids"] == ["cnc-01-shift-1", "cnc-01-shift-2"]
    (opened,) = plant.cmms.work_orders()
    assert opened.parts_reserved == ("spindle-cartridge",)
    assert plant.cmms.inventory()["spindle-cartridge"] == DEFAULT_STOCK["spindle-cartridge"] - 1
    assert [(s.slot_id, s.start) for s in plant.cmms.schedule("cnc-01")] == [
        ("cnc-01-shift-2", "2026-01-05T17:00+00:00"),
    ]
    assert [(s.slot_id, s.start) for s in plant.cmms.schedule("cnc-02")][2:] == [
        ("cnc-01-shift-1", "2026-01-05T22:00+00:00"),
    ]
    # the second time, production finds nothing left in the window
    assert again["production"]["action"] == "none"
