"""The maintenance management system as an MCP server (official SDK, streamable HTTP or stdio).

    chorus mcp serve chorus_agents.maintenance.cmms_server --port 8000  # streamable HTTP at /mcp
    python -m chorus_agents.maintenance.cmms_server --port 8000        # the same
    python -m chorus_agents.maintenance.cmms_server --transport stdio

Tools: ``list_machines``, ``get_machine`` and ``list_work_orders`` to look; ``open_work_order``,
``assign_work_order``, ``reserve_part``, ``schedule_work_order`` and ``complete_work_order``
for maintenance; ``get_inventory``; ``get_production_schedule``, ``plan_production_slot`` and
``move_production_slot`` for production scheduling. A refused operation is a tool error
(``isError``) whose text names the rule. The idempotency key is taken from the call's
``_meta`` (``chorus/idempotency-key``), which the Chorus tool gateway sets per call, or from
the ``idempotency_key`` argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from chorus_agents import mcpserver
from chorus_agents.maintenance.cmms import (
    FLEET,
    MaintenanceRefused,
    MaintenanceSystem,
    ProductionSlot,
    WorkOrder,
)
from chorus_agents.mcpserver import refusals

DEFAULT_STOCK: Mapping[str, int] = {
    "bearing-6205": 3,
    "bearing-6308": 0,
    "drive-belt-a42": 2,
    "seal-kit-p1": 5,
    "spindle-cartridge": 1,
}


def default_slots(day: datetime) -> list[ProductionSlot]:
    """Two eight-hour shifts on every machine but the pump, from 06:00 UTC on ``day``."""
    first = day.astimezone(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    slots = []
    for machine in FLEET:
        if machine.line == "utilities":
            continue
        for shift in range(2):
            start = first + timedelta(hours=8 * shift)
            slots.append(
                ProductionSlot(
                    slot_id=f"{machine.machine_id}-shift-{shift + 1}",
                    machine_id=machine.machine_id,
                    product=f"{machine.line}-part",
                    start=start.isoformat(timespec="minutes"),
                    end=(start + timedelta(hours=8)).isoformat(timespec="minutes"),
                )
            )
    return slots


def _work_order(order: WorkOrder) -> dict[str, Any]:
    return {k: (str(v) if k in ("priority", "status") else v) for k, v in asdict(order).items()}


def build_server(system: MaintenanceSystem) -> MCPServer[Any]:
    """An MCP server whose tools act on ``system``."""
    server: MCPServer[Any] = MCPServer(
        "maintenance",
        instructions="A maintenance management system: work orders, spare parts, production.",
    )

    @server.tool(description="Every machine: id, name and production line.")
    def list_machines() -> dict[str, Any]:
        return {"machines": [asdict(m) for m in system.machines()]}

    @server.tool(description="One machine with its open work orders and its production slots.")
    def get_machine(machine_id: str) -> dict[str, Any]:
        with refusals("lookup", MaintenanceRefused):
            return {
                **asdict(system.machine(machine_id)),
                "open_work_orders": [
                    _work_order(o) for o in system.work_orders(machine_id, open_only=True)
                ],
                "production_slots": [asdict(s) for s in system.schedule(machine_id)],
            }

    @server.tool(description="Work orders, of one machine or all; open_only skips completed.")
    def list_work_orders(machine_id: str | None = None, open_only: bool = False) -> dict[str, Any]:
        with refusals("lookup", MaintenanceRefused):
            orders = system.work_orders(machine_id, open_only=open_only)
        return {"work_orders": [_work_order(o) for o in orders]}

    @server.tool(
        description=(
            "Open a work order on a machine for a failure mode (bearing_wear, overheating, ...) "
            "with a priority (low, medium, high, critical) and the spare parts it needs. "
            "A machine has at most one open work order per failure mode."
        )
    )
    def open_work_order(
        machine_id: str,
        failure_mode: str,
        priority: str,
        description: str = "",
        parts: list[str] | None = None,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("work order", MaintenanceRefused):
            order = system.open_work_order(
                machine_id, failure_mode, priority, description, parts or (), idempotency_key=key
            )
        return _work_order(order)

    @server.tool(description="Assign an open work order to a technician.")
    def assign_work_order(
        work_order_id: str,
        technician: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("assignment", MaintenanceRefused):
            return _work_order(system.assign(work_order_id, technician, idempotency_key=key))

    @server.tool(
        description=(
            "Reserve one spare part from stock for a work order that needs it. "
            "Refused when the part is out of stock."
        )
    )
    def reserve_part(
        work_order_id: str,
        part_id: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("reservation", MaintenanceRefused):
            return _work_order(system.reserve_part(work_order_id, part_id, idempotency_key=key))

    @server.tool(
        description=(
            "Schedule a work order to start at an ISO 8601 time. It needs a technician and "
            "every part it needs reserved."
        )
    )
    def schedule_work_order(
        work_order_id: str,
        start: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("scheduling", MaintenanceRefused):
            order = system.schedule_work_order(work_order_id, start, idempotency_key=key)
        return _work_order(order)

    @server.tool(description="Complete an assigned work order: the machine is repaired.")
    def complete_work_order(
        work_order_id: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("completion", MaintenanceRefused):
            return _work_order(system.complete(work_order_id, idempotency_key=key))

    @server.tool(description="Spare parts on the shelf, by part id.")
    def get_inventory() -> dict[str, int]:
        return system.inventory()

    @server.tool(description="Production slots by start time, of one machine or all.")
    def get_production_schedule(machine_id: str | None = None) -> dict[str, Any]:
        with refusals("lookup", MaintenanceRefused):
            return {"slots": [asdict(s) for s in system.schedule(machine_id)]}

    @server.tool(
        description=(
            "Plan a production slot on a machine: ISO 8601 start and end, firm for a "
            "committed run that only people move. Refused over another slot; the same slot "
            "planned again changes nothing."
        )
    )
    def plan_production_slot(
        slot_id: str, machine_id: str, product: str, start: str, end: str, firm: bool = False
    ) -> dict[str, Any]:
        slot = ProductionSlot(slot_id, machine_id, product, start, end, firm)
        with refusals("production plan", MaintenanceRefused):
            return asdict(system.plan_slot(slot))

    @server.tool(
        description=(
            "Move a production slot to a machine and an ISO 8601 start time, keeping its "
            "length. Refused onto a machine with an open critical work order or over "
            "another slot."
        )
    )
    def move_production_slot(
        slot_id: str,
        machine_id: str,
        start: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("production move", MaintenanceRefused):
            return asdict(system.move_slot(slot_id, machine_id, start, idempotency_key=key))

    return server


def create_server() -> MCPServer[Any]:
    """The reference plant with the default stock and today's shifts: ``chorus mcp serve``."""
    return build_server(MaintenanceSystem(FLEET, DEFAULT_STOCK, default_slots(datetime.now(UTC))))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m``: serves :func:`create_server` (:func:`chorus_agents.mcpserver.main`)."""
    return mcpserver.main(
        create_server, argv, prog="python -m chorus_agents.maintenance.cmms_server"
    )


if __name__ == "__main__":
    raise SystemExit(main())
