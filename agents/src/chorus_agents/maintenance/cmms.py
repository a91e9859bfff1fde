"""A simulated maintenance management system: machines, work orders, spare parts, production.

The system is the maintenance domain's back end. Its MCP server (:mod:`.cmms_server`)
exposes it to the agents (a diagnosis agent opens work orders, a planner assigns and
schedules them, a production-scheduling agent moves production around a failing
machine). It enforces its own rules, so agents act within them:

- a work order names a known machine, a failure mode and a priority (low, medium, high,
  critical); a machine has at most one open work order per failure mode;
- a part is reserved for a work order that needs it, once, and reserving it takes one
  from stock: an empty shelf is refused;
- a work order is scheduled only once a technician is assigned and every part it needs is
  reserved; a completed work order cannot be assigned, scheduled or completed again;
- a production slot is planned on a known machine, ending after it starts, over no other
  slot of that machine; it is never moved onto a machine with an open critical work
  order, nor onto one whose other slots it would overlap. A *firm* slot is a committed
  run: the production scheduler's instructions leave it to people (the system itself
  moves it when told);
- the same idempotency key returns the first answer and changes nothing.

Every refusal is a :class:`MaintenanceRefused` naming its rule. Not thread-safe: the MCP
server calls it from one event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class WorkOrderStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"


class MaintenanceRefused(ValueError):
    """The system refused an operation; ``rule`` names the rule (``out_of_stock``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Machine:
    machine_id: str
    name: str
    line: str


@dataclass(frozen=True)
class WorkOrder:
    work_order_id: str
    machine_id: str
    failure_mode: str
    priority: Priority
    description: str
    status: WorkOrderStatus
    parts_needed: tuple[str, ...]
    parts_reserved: tuple[str, ...]
    technician: str | None
    scheduled_for: str | None
    time: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ProductionSlot:
    slot_id: str
    machine_id: str
    product: str
    start: str
    end: str
    firm: bool = False
    """A committed run (a customer's): only people move it (see the module docstring)."""


FLEET: tuple[Machine, ...] = (
    Machine("press-01", "Stamping press 1", "body"),
    Machine("press-02", "Stamping press 2", "body"),
    Machine("cnc-01", "CNC mill 1", "machining"),
    Machine("cnc-02", "CNC mill 2", "machining"),
    Machine("pump-01", "Coolant pump 1", "utilities"),
)
"""The reference plant: the machines the telemetry generator and the MCP server know."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _instant(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MaintenanceRefused("time", f"{what} {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class MaintenanceSystem:
    """Machines, their work orders, the spare parts store and the production schedule."""

    def __init__(
        self,
        machines: Iterable[Machine],
        stock: Mapping[str, int],
        slots: Iterable[ProductionSlot] = (),
        *,
        clock: Callable[[], str] = _now,
    ) -> None:
        self._machines = {m.machine_id: m for m in machines}
        self._stock = dict(stock)
        self._slots = {s.slot_id: s for s in slots}
        self._work_orders: dict[str, WorkOrder] = {}
        self._by_key: dict[str, str] = {}
        self._slot_keys: dict[str, str] = {}
        self._ids = (f"wo-{n:06d}" for n in itertools.count(1))
        self._clock = clock

    # --- lookups ----------------------------------------------------------------------------

    def machine(self, machine_id: str) -> Machine:
        machine = self._machines.get(machine_id)
        if machine is None:
            known = ", ".join(sorted(self._machines))
            raise MaintenanceRefused(
                "unknown_machine", f"machine {machine_id!r} does not exist ({known})"
            )
        return machine

    def machines(self) -> list[Machine]:
        return [self._machines[k] for k in sorted(self._machines)]

    def work_order(self, work_order_id: str) -> WorkOrder:
        order = self._work_orders.get(work_order_id)
        if order is None:
            raise MaintenanceRefused(
                "unknown_work_order", f"work order {work_order_id!r} does not exist"
            )
        return order

    def work_orders(
        self, machine_id: str | None = None, *, open_only: bool = False
    ) -> list[WorkOrder]:
        """Work orders in id order, of one machine or all, optionally only the open ones."""
        if machine_id is not None:
            self.machine(machine_id)
        return [
            o
            for _, o in sorted(self._work_orders.items())
            if (machine_id is None or o.machine_id == machine_id)
            and not (open_only and o.status is WorkOrderStatus.COMPLETED)
        ]

    def inventory(self) -> dict[str, int]:
        """Every part's stock on the shelf (reserved parts are no longer on it)."""
        return dict(sorted(self._stock.items()))

    def schedule(self, machine_id: str | None = None) -> list[ProductionSlot]:
        """Production slots by start time, of one machine or all."""
        if machine_id is not None:
            self.machine(machine_id)
        return sorted(
            (s for s in self._slots.values() if machine_id is None or s.machine_id == machine_id),
            key=lambda s: (s.start, s.slot_id),
        )

    def _replay(self, key: str | None) -> WorkOrder | None:
        if key is not None and key in self._by_key:
            return self._work_orders[self._by_key[key]]
        return None

    def _remember(self, key: str | None, order: WorkOrder) -> WorkOrder:
        self._work_orders[order.work_order_id] = order
        if key is not None:
            self._by_key[key] = order.work_order_id
        return order

    def _open(self, work_order_id: str) -> WorkOrder:
        order = self.work_order(work_order_id)
        if order.status is WorkOrderStatus.COMPLETED:
            raise MaintenanceRefused("completed", f"work order {work_order_id} is completed")
        return order

    # --- work orders ------------------------------------------------------------------------

    def open_work_order(
        self,
        machine_id: str,
        failure_mode: str,
        priority: str,
        description: str = "",
        parts: Sequence[str] = (),
        *,
        idempotency_key: str | None = None,
    ) -> WorkOrder:
        """Open a work order; refused for a machine with one open for the same failure mode."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        self.machine(machine_id)
        try:
            level = Priority(priority)
        except ValueError:
            levels = ", ".join(p.value for p in Priority)
            raise MaintenanceRefused(
                "priority", f"priority must be one of {levels}, got {priority!r}"
            ) from None
        mode = failure_mode.strip()
        if not mode:
            raise MaintenanceRefused("failure_mode", "a work order needs a failure mode")
        for part in parts:
            self._part(part)
        for existing in self.work_orders(machine_id, open_only=True):
            if existing.failure_mode == mode:
                raise MaintenanceRefused(
                    "one_open_per_failure_mode",
                    f"machine {machine_id} already has open work order "
                    f"{existing.work_order_id} for {mode!r}",
                )
        order = WorkOrder(
            work_order_id=next(self._ids),
            machine_id=machine_id,
            failure_mode=mode,
            priority=level,
            description=description,
            status=WorkOrderStatus.OPEN,
            parts_needed=tuple(parts),
            parts_reserved=(),
            technician=None,
            scheduled_for=None,
            time=self._clock(),
            idempotency_key=idempotency_key,
        )
        return self._remember(idempotency_key, order)

    def assign(
        self, work_order_id: str, technician: str, *, idempotency_key: str | None = None
    ) -> WorkOrder:
        """Give a work order to a technician (again, to hand it over)."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self._open(work_order_id)
        if not technician.strip():
            raise MaintenanceRefused("technician", "assigning needs a technician")
        status = (
            order.status if order.status is WorkOrderStatus.SCHEDULED else WorkOrderStatus.ASSIGNED
        )
        assigned = replace(order, technician=technician, status=status, time=self._clock())
        return self._remember(idempotency_key, assigned)

    def _part(self, part_id: str) -> int:
        stock = self._stock.get(part_id)
        if stock is None:
            raise MaintenanceRefused("unknown_part", f"part {part_id!r} is not stocked")
        return stock

    def reserve_part(
        self, work_order_id: str, part_id: str, *, idempotency_key: str | None = None
    ) -> WorkOrder:
        """Take one ``part_id`` off the shelf for a work order that needs it."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self._open(work_order_id)
        stock = self._part(part_id)
        needed = order.parts_needed.count(part_id)
        if needed == 0:
            raise MaintenanceRefused(
                "part_not_needed", f"work order {work_order_id} does not need {part_id}"
            )
        if order.parts_reserved.count(part_id) >= needed:
            raise MaintenanceRefused(
                "already_reserved", f"work order {work_order_id} already has its {part_id}"
            )
        if stock <= 0:
            raise MaintenanceRefused("out_of_stock", f"part {part_id} is out of stock")
        self._stock[part_id] = stock - 1
        reserved = replace(
            order, parts_reserved=(*order.parts_reserved, part_id), time=self._clock()
        )
        return self._remember(idempotency_key, reserved)

    def schedule_work_order(
        self, work_order_id: str, start: str, *, idempotency_key: str | None = None
    ) -> WorkOrder:
        """Schedule an assigned work order whose parts are all reserved."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self._open(work_order_id)
        _instant(start, "start")
        if order.technician is None:
            raise MaintenanceRefused(
                "not_assigned", f"work order {work_order_id} has no technician yet"
            )
        missing = list(order.parts_needed)
        for part in order.parts_reserved:
            missing.remove(part)
        if missing:
            raise MaintenanceRefused(
                "parts_not_reserved",
                f"work order {work_order_id} still needs {', '.join(sorted(missing))}",
            )
        scheduled = replace(
            order, status=WorkOrderStatus.SCHEDULED, scheduled_for=start, time=self._clock()
        )
        return self._remember(idempotency_key, scheduled)

    def complete(self, work_order_id: str, *, idempotency_key: str | None = None) -> WorkOrder:
        """Close a work order: the machine is repaired, its parts are used."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self._open(work_order_id)
        if order.technician is None:
            raise MaintenanceRefused(
                "not_assigned", f"work order {work_order_id} has no technician yet"
            )
        done = replace(order, status=WorkOrderStatus.COMPLETED, time=self._clock())
        return self._remember(idempotency_key, done)

    # --- production -------------------------------------------------------------------------

    def plan_slot(self, slot: ProductionSlot) -> ProductionSlot:
        """Adds a production slot; the same slot planned again changes nothing."""
        known = self._slots.get(slot.slot_id)
        if known is not None:
            if known == slot:
                return known
            raise MaintenanceRefused("slot_exists", f"production slot {slot.slot_id} exists")
        self.machine(slot.machine_id)
        begin, finish = _instant(slot.start, "start"), _instant(slot.end, "end")
        if finish <= begin:
            raise MaintenanceRefused("time", f"slot {slot.slot_id} ends before it starts")
        for other in self.schedule(slot.machine_id):
            if begin < _instant(other.end, "end") and _instant(other.start, "start") < finish:
                raise MaintenanceRefused(
                    "slot_overlap",
                    f"slot {slot.slot_id} would overlap slot {other.slot_id} on {slot.machine_id}",
                )
        self._slots[slot.slot_id] = slot
        return slot

    def move_slot(
        self, slot_id: str, machine_id: str, start: str, *, idempotency_key: str | None = None
    ) -> ProductionSlot:
        """Move a production slot to ``machine_id`` at ``start``, keeping its length."""
        if idempotency_key is not None and idempotency_key in self._slot_keys:
            return self._slots[self._slot_keys[idempotency_key]]
        slot = self._slots.get(slot_id)
        if slot is None:
            raise MaintenanceRefused("unknown_slot", f"production slot {slot_id!r} does not exist")
        self.machine(machine_id)
        begin = _instant(start, "start")
        length = _instant(slot.end, "end") - _instant(slot.start, "start")
        finish = begin + length
        for order in self.work_orders(machine_id, open_only=True):
            if order.priority is Priority.CRITICAL:
                raise MaintenanceRefused(
                    "critical_work_order",
                    f"machine {machine_id} has open critical work order {order.work_order_id} "
                    f"({order.failure_mode})",
                )
        for other in self.schedule(machine_id):
            if other.slot_id != slot_id and (
                begin < _instant(other.end, "end") and _instant(other.start, "start") < finish
            ):
                raise MaintenanceRefused(
                    "slot_overlap",
                    f"slot {slot_id} would overlap slot {other.slot_id} on {machine_id}",
                )
        moved = replace(
            slot,
            machine_id=machine_id,
            start=begin.isoformat(timespec="minutes"),
            end=finish.isoformat(timespec="minutes"),
        )
        self._slots[slot_id] = moved
        if idempotency_key is not None:
            self._slot_keys[idempotency_key] = slot_id
        return moved
