"""The maintenance agents' decisions without a broker: diagnosis, planning, moves, the script."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chorus_agents.maintenance.cmms import FLEET, MaintenanceSystem
from chorus_agents.maintenance.cmms_server import DEFAULT_STOCK, default_slots
from chorus_agents.maintenance.common import Signal, instant, refusal_rule
from chorus_agents.maintenance.monitoring import Anomaly, diagnose, priority_for
from chorus_agents.maintenance.planning import maintenance_window, parts_for, technician_for
from chorus_agents.maintenance.production import (
    Slot,
    earliest_fit,
    plan_moves,
    prompt,
)
from chorus_agents.models import ChatMessage, ModelRequest, ToolSpec

from tests.agents.spec_models import spec_script

pytestmark = pytest.mark.unit

DAY = datetime(2026, 1, 5, tzinfo=UTC)
LINES = {m.machine_id: m.line for m in FLEET}


def envelope(kind: str, machine: str, time: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{kind}:{machine}:{time}",
        "source": "chorus_flink.jobs.maintenance",
        "type": f"dev.chorus.maintenance.{kind}",
        "kind": kind,
        "subject": machine,
        "time": time,
        "data": data,
    }


def anomaly(second: int, *, vibration: float, vz: float, temperature: float, tz: float) -> Anomaly:
    signal = Signal.parse(
        envelope(
            "anomaly", "press-01", f"2026-01-05T09:30:{second:02d}.000Z",
            score=max(abs(vz), abs(tz)), vibration=vibration, vibration_z=vz,
            temperature=temperature, temperature_z=tz,
        )
    )  # fmt: skip
    assert signal is not None
    found = Anomaly.of(signal)
    assert found is not None
    return found


def alert(first: int, last: int, max_score: float) -> Signal:
    signal = Signal.parse(
        envelope(
            "maintenance_alert", "press-01", f"2026-01-05T09:30:{last:02d}.000Z",
            # Flink writes the TIMESTAMP(3) fields of data without a zone
            first_time=f"2026-01-05T09:30:{first:02d}", last_time=f"2026-01-05T09:30:{last:02d}",
            max_score=max_score, anomalies=3,
        )
    )  # fmt: skip
    assert signal is not None
    return signal


def test_a_vibration_led_run_is_bearing_wear_and_its_peaks_set_the_priority() -> None:
    run = [
        anomaly(0, vibration=2.1, vz=3.5, temperature=48.0, tz=0.2),  # before the run
        anomaly(5, vibration=3.9, vz=14.0, temperature=48.3, tz=0.8),
        anomaly(10, vibration=5.6, vz=22.0, temperature=48.9, tz=1.5),
        anomaly(15, vibration=7.4, vz=25.0, temperature=49.6, tz=2.9),
    ]
    found = diagnose(alert(5, 15, 25.0), run)
    assert (found["failure_mode"], found["leading"], found["priority"]) == (
        "bearing_wear",
        "vibration",
        "critical",
    )
    assert found["evidence"]["anomalies_seen"] == 3  # the run only, not the earlier one
    assert found["evidence"]["peak_vibration"] == 7.4
    assert found["signal_id"] == "maintenance_alert:press-01:2026-01-05T09:30:15.000Z"
    assert found["diagnosis_id"] == found["signal_id"] + "/diagnosis"
    assert found["machine_id"] == "press-01"


def test_a_temperature_led_run_is_overheating_and_an_unseen_run_needs_inspection() -> None:
    hot = [anomaly(s, vibration=1.6, vz=0.4, temperature=72.0, tz=6.0) for s in (5, 10, 15)]
    found = diagnose(alert(5, 15, 6.0), hot)
    assert (found["failure_mode"], found["priority"]) == ("overheating", "high")
    blind = diagnose(alert(5, 15, 4.0), [])
    assert (blind["failure_mode"], blind["leading"], blind["priority"]) == (
        "inspection",
        "unknown",
        "medium",
    )


def test_priorities() -> None:
    assert priority_for(3.5, 2.0, 50.0) == "medium"
    assert priority_for(10.0, 2.0, 50.0) == "high"
    assert priority_for(3.5, 4.5, 50.0) == "high"
    assert priority_for(3.5, 2.0, 86.0) == "critical"
    assert priority_for(3.5, 7.1, 50.0) == "critical"


def test_the_maintenance_window_starts_at_the_next_full_hour() -> None:
    at = datetime(2026, 1, 5, 9, 30, 15, tzinfo=UTC)
    assert maintenance_window(at, "bearing_wear") == (
        datetime(2026, 1, 5, 10, tzinfo=UTC),
        datetime(2026, 1, 5, 14, tzinfo=UTC),
    )
    sharp = datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert maintenance_window(sharp, "inspection") == (sharp, sharp + timedelta(hours=1))
    assert parts_for("bearing_wear", "body") == ("bearing-6205",)
    assert parts_for("overheating", "body") == ()
    assert technician_for("machining") == "tech-ben"
    assert technician_for("nowhere") == "tech-on-call"


def slots() -> list[Slot]:
    return [Slot.of(s.__dict__) for s in default_slots(DAY)]


def test_an_overlapping_slot_moves_to_the_sibling_machine_where_it_fits_first() -> None:
    window = (DAY.replace(hour=10), DAY.replace(hour=14))
    (move,) = plan_moves("press-01", window, slots(), LINES, frozenset({"press-01"}))
    assert (move["slot_id"], move["to_machine"], move["start"]) == (
        "press-01-shift-1",
        "press-02",
        "2026-01-05T22:00+00:00",  # press-02 runs its own two shifts until then
    )
    # a window across both shifts moves both, one after the other
    wide = (DAY.replace(hour=12), DAY.replace(hour=16))
    first, second = plan_moves("cnc-01", wide, slots(), LINES, frozenset({"cnc-01"}))
    assert (first["to_machine"], first["start"]) == ("cnc-02", "2026-01-05T22:00+00:00")
    assert (second["to_machine"], second["start"]) == ("cnc-02", "2026-01-06T06:00+00:00")
    # nothing overlaps: nothing moves; a machine without a line mate and blocked: nowhere
    assert plan_moves("press-01", (DAY.replace(hour=2), DAY.replace(hour=6)), slots(), LINES,
                      frozenset()) == []  # fmt: skip
    stuck = plan_moves("cnc-01", window, slots(), LINES, frozenset({"cnc-01", "cnc-02"}))
    assert [(m["slot_id"], m["to_machine"]) for m in stuck] == [("cnc-01-shift-1", None)]


def test_without_a_critical_order_the_machine_itself_may_take_its_slot_back_later() -> None:
    busy = [
        (DAY.replace(hour=6), DAY.replace(hour=14)),
        (DAY.replace(hour=14), DAY.replace(hour=22)),
    ]
    assert earliest_fit(busy, DAY.replace(hour=10), timedelta(hours=2)) == DAY.replace(hour=22)
    assert earliest_fit([], DAY.replace(hour=10), timedelta(hours=2)) == DAY.replace(hour=10)
    # press-02 is blocked, press-01 is not: shift-1 comes back on press-01 after the window
    window = (DAY.replace(hour=10), DAY.replace(hour=11))
    (move,) = plan_moves("press-01", window, slots(), LINES, frozenset({"press-02"}))
    assert (move["to_machine"], move["start"]) == ("press-01", "2026-01-05T22:00+00:00")


def test_the_plan_is_what_the_maintenance_system_accepts() -> None:
    cmms = MaintenanceSystem(FLEET, DEFAULT_STOCK, default_slots(DAY))
    cmms.open_work_order("press-01", "bearing_wear", "critical", parts=["bearing-6205"])
    window = (DAY.replace(hour=10), DAY.replace(hour=14))
    (move,) = plan_moves("press-01", window, slots(), LINES, frozenset({"press-01"}))
    moved = cmms.move_slot(move["slot_id"], move["to_machine"], move["start"])
    assert (moved.machine_id, moved.start) == ("press-02", "2026-01-05T22:00+00:00")
    assert instant(moved.end) == DAY + timedelta(days=1, hours=6)


def test_refusal_rules_are_read_from_the_error() -> None:
    text = "Error executing tool reserve_part: reservation refused (out_of_stock): part x"
    assert refusal_rule(text) == "out_of_stock"
    assert refusal_rule("something else") == "unknown"


@pytest.mark.anyio
async def test_the_scheduling_script_applies_the_proposed_move_only() -> None:
    model = spec_script("maintenance", "production-scheduling")
    tools = (ToolSpec(name="move_production_slot", description="", input_schema={}),)

    async def ask(*messages: ChatMessage) -> Any:
        return await model.complete(ModelRequest(messages=messages, tools=tools))

    request = {
        "request_id": "wo:x/production", "work_order_id": "wo-000001", "machine_id": "press-01",
        "failure_mode": "bearing_wear", "priority": "critical",
        "window": {"start": "2026-01-05T10:00+00:00", "end": "2026-01-05T14:00+00:00"},
    }  # fmt: skip
    move = {
        "slot_id": "press-01-shift-1", "product": "body-part", "to_machine": "press-02",
        "start": "2026-01-05T22:00+00:00", "from_start": "2026-01-05T06:00+00:00",
        "from_end": "2026-01-05T14:00+00:00",
    }  # fmt: skip
    text = prompt(request, move)
    assert json.loads(text.splitlines()[-1])["proposed_move"]["machine_id"] == "press-02"
    asked = ChatMessage(role="user", text=text)
    (call,) = (await ask(asked)).tool_calls
    assert call.name == "move_production_slot"
    assert call.arguments == {
        "slot_id": "press-01-shift-1",
        "machine_id": "press-02",
        "start": "2026-01-05T22:00+00:00",
    }
    called = (await ask(asked)).as_message()
    ok = ChatMessage(role="tool", text='{"slot_id": "press-01-shift-1"}', tool_call_id=call.id)
    refused = ChatMessage(
        role="tool",
        text="production move refused (critical_work_order): machine press-02 has ...",
        tool_call_id=call.id,
    )
    assert (await ask(asked, called, ok)).text.startswith("Moved:")
    assert (await ask(asked, called, refused)).text.startswith("Not moved:")
    assert (await ask(ChatMessage(role="user", text="hello"))).text.startswith(
        "No production change"
    )
    # a firm slot (a committed run) is shown as such, and the model leaves it to the planner
    firm = prompt(request, {**move, "firm": True})
    assert "(body-part, 2026-01-05T06:00+00:00 to 2026-01-05T14:00+00:00, firm)" in firm
    declined = await ask(ChatMessage(role="user", text=firm))
    assert declined.tool_calls == ()
    assert declined.text == (
        "Not moved: press-01-shift-1 is a firm run; the planner decides whether it moves."
    )


def test_slots_not_moved_yet_still_hold_their_place() -> None:
    # a high priority repair 13:00-17:00 on cnc-01: the morning shift cannot come back at
    # 17:00 while the afternoon one is still there, so it goes to cnc-02; the afternoon
    # shift then resumes on cnc-01 after the repair
    window = (DAY.replace(hour=13), DAY.replace(hour=17))
    first, second = plan_moves("cnc-01", window, slots(), LINES, frozenset())
    assert (first["to_machine"], first["start"]) == ("cnc-02", "2026-01-05T22:00+00:00")
    assert (second["to_machine"], second["start"]) == ("cnc-01", "2026-01-05T17:00+00:00")
    cmms = MaintenanceSystem(FLEET, DEFAULT_STOCK, default_slots(DAY))
    for move in (first, second):
        cmms.move_slot(move["slot_id"], move["to_machine"], move["start"])
