"""``maintenance-planning``: turns a diagnosis into a supplied, scheduled work order.

A code-defined agent answering A2A messages. A diagnosis (from ``equipment-monitoring``)
is a JSON object::

    {"diagnosis_id", "signal_id", "machine_id", "time", "failure_mode", "priority", ...}

With the maintenance system's tools (Tool ``cmms``) the planner:

1. reads the machine (``get_machine``: its line, its open work orders); a machine that
   already has an open work order for the failure mode, opened for another alert, is
   being looked after: the answer is ``status: existing`` with that work order, and
   nothing else is done (the Flink job raises an alert per run of anomalies, so a failing
   machine raises several);
2. opens a work order (``open_work_order``) with the parts the failure mode needs on the
   machine's line (:data:`PARTS`), under the idempotency key ``wo:<signal id>``;
3. reserves each part (``reserve_part``); a refused reservation (``out_of_stock``) leaves
   the work order ``awaiting_parts``;
4. assigns the line's technician (:data:`TECHNICIANS`, ``assign_work_order``) and, with
   every part reserved, schedules it (``schedule_work_order``) for the maintenance window:
   from the first full hour after the alert, :data:`REPAIR_HOURS` long;
5. asks ``production-scheduling`` by A2A to move the machine's production out of the
   window.

Each write carries a key derived from ``wo:<signal id>``, so a diagnosis sent again (a
redelivered alert) replays the maintenance system's first answers and changes nothing.
The outcome is published on ``maintenance.work-orders`` (key: the machine id), audited
as a ``decision`` with the ``signal_id`` and the ``work_order_id``, and answered as a
data part::

    {"signal_id", "diagnosis_id", "machine_id", "failure_mode", "priority",
     "status": "scheduled"|"awaiting_parts"|"existing", "work_order_id", "parts",
     "parts_reserved", "missing_parts", "technician", "window": {"start", "end"},
     "production"?: {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.maintenance.common import (
    CMMS,
    WORK_ORDERS,
    MaintenanceError,
    answer_data,
    dumps,
    instant,
    iso_minutes,
    refusal_rule,
    request_json,
    required,
    tool_json,
)

PRODUCTION_AGENT = "production-scheduling"

PARTS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("bearing_wear", "body"): ("bearing-6205",),
    ("bearing_wear", "machining"): ("spindle-cartridge",),
    ("bearing_wear", "utilities"): ("bearing-6308",),
    ("overheating", "utilities"): ("seal-kit-p1",),
}
"""The spare parts a failure mode needs on a production line (none when not listed)."""
TECHNICIANS: Mapping[str, str] = {
    "body": "tech-ana",
    "machining": "tech-ben",
    "utilities": "tech-chen",
}
"""The technician on call for each production line."""
ON_CALL = "tech-on-call"
REPAIR_HOURS: Mapping[str, int] = {"bearing_wear": 4, "overheating": 2}
"""How long a failure mode keeps the machine down; anything else: one hour."""


def parts_for(failure_mode: str, line: str) -> tuple[str, ...]:
    return PARTS.get((failure_mode, line), ())


def technician_for(line: str) -> str:
    return TECHNICIANS.get(line, ON_CALL)


def maintenance_window(alert_time: datetime, failure_mode: str) -> tuple[datetime, datetime]:
    """From the first full hour after the alert (or at it), as long as the repair takes."""
    start = alert_time.replace(minute=0, second=0, microsecond=0)
    if start < alert_time:
        start += timedelta(hours=1)
    return start, start + timedelta(hours=REPAIR_HOURS.get(failure_mode, 1))


def work_order_key(signal_id: str) -> str:
    """The idempotency key of the work order opened for the alert ``signal_id``."""
    return f"wo:{signal_id}"


class MaintenancePlanner(Handler):
    """The ``maintenance-planning`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.work_orders = topic_prefix + WORK_ORDERS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        diagnosis = request_json(message.text, message.data, agent=ctx.agent)
        signal_id, machine_id, failure_mode, priority = required(
            diagnosis, "signal_id", "machine_id", "failure_mode", "priority", agent=ctx.agent
        )
        alert_time = instant(diagnosis.get("time"))
        if alert_time is None:
            raise MaintenanceError(f"agent {ctx.agent}: diagnosis {signal_id} has no time")
        key = work_order_key(signal_id)
        machine = tool_json(await ctx.tools.call(CMMS, "get_machine", {"machine_id": machine_id}))
        line = str(machine.get("line", ""))
        start, end = maintenance_window(alert_time, failure_mode)
        outcome: dict[str, Any] = {
            "signal_id": signal_id,
            "diagnosis_id": diagnosis.get("diagnosis_id"),
            "machine_id": machine_id,
            "failure_mode": failure_mode,
            "priority": priority,
        }
        existing = next(
            (
                o
                for o in machine.get("open_work_orders", ())
                if o.get("failure_mode") == failure_mode and o.get("idempotency_key") != key
            ),
            None,
        )
        if existing is not None:
            outcome.update(
                status="existing",
                work_order_id=existing["work_order_id"],
                technician=existing.get("technician"),
                scheduled_for=existing.get("scheduled_for"),
            )
        else:
            outcome.update(await self._plan(ctx, outcome, key, line, start, end))
        ctx.publish(self.work_orders, outcome, key=machine_id)
        production = outcome.get("production") or {}
        ctx.audit.record(
            "decision",
            action=outcome["status"],
            signal_id=signal_id,
            work_order_id=outcome["work_order_id"],
            machine_id=machine_id,
            failure_mode=failure_mode,
            priority=priority,
            missing_parts=outcome.get("missing_parts"),
            moved_slot_ids=production.get("moved_slot_ids"),
        )
        return Reply(
            text=f"work order {outcome['work_order_id']} on {machine_id}: {outcome['status']}",
            data=outcome,
        )

    async def _plan(
        self,
        ctx: Context,
        outcome: Mapping[str, Any],
        key: str,
        line: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, Any]:
        """Opens, supplies, assigns and schedules the work order; asks production."""
        machine_id, failure_mode = outcome["machine_id"], outcome["failure_mode"]
        parts = parts_for(failure_mode, line)
        evidence = f" (signal {outcome['signal_id']})"
        order = tool_json(
            await ctx.tools.call(
                CMMS,
                "open_work_order",
                {
                    "machine_id": machine_id,
                    "failure_mode": failure_mode,
                    "priority": outcome["priority"],
                    "description": f"{failure_mode} diagnosed on {machine_id}{evidence}",
                    "parts": list(parts),
                },
                idempotency_key=key,
            )
        )
        work_order_id = str(order["work_order_id"])
        missing: list[dict[str, str]] = []
        for n, part in enumerate(parts, start=1):
            reserved = await ctx.tools.call(
                CMMS,
                "reserve_part",
                {"work_order_id": work_order_id, "part_id": part},
                idempotency_key=f"{key}/reserve/{n}",
            )
            if reserved.is_error:
                missing.append({"part_id": part, "rule": refusal_rule(reserved.text)})
        technician = technician_for(line)
        tool_json(
            await ctx.tools.call(
                CMMS,
                "assign_work_order",
                {"work_order_id": work_order_id, "technician": technician},
                idempotency_key=f"{key}/assign",
            )
        )
        window = {"start": iso_minutes(start), "end": iso_minutes(end)}
        planned: dict[str, Any] = {
            "work_order_id": work_order_id,
            "parts": list(parts),
            "parts_reserved": [p for p in parts if p not in {m["part_id"] for m in missing}],
            "missing_parts": missing,
            "technician": technician,
            "window": window,
        }
        if missing:
            return {**planned, "status": "awaiting_parts"}
        tool_json(
            await ctx.tools.call(
                CMMS,
                "schedule_work_order",
                {"work_order_id": work_order_id, "start": window["start"]},
                idempotency_key=f"{key}/schedule",
            )
        )
        request = {
            "request_id": f"{key}/production",
            "signal_id": outcome["signal_id"],
            "work_order_id": work_order_id,
            "machine_id": machine_id,
            "failure_mode": failure_mode,
            "priority": outcome["priority"],
            "window": window,
        }
        try:
            production = answer_data(
                await ctx.agents.ask(PRODUCTION_AGENT, dumps(request)), agent=PRODUCTION_AGENT
            )
        except MaintenanceError as failed:
            production = {"action": "failed", "reason": str(failed)}
        return {**planned, "status": "scheduled", "production": production}
