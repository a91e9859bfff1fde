"""``production-scheduling``: moves production away from a machine's maintenance window.

An instruction-driven agent (:class:`~chorus_agents.instructed.InstructedAgent`: a model
and the maintenance system's ``move_production_slot`` tool) behind a small code-defined
gate. A request (from ``maintenance-planning``) is a JSON object::

    {"request_id", "signal_id", "work_order_id", "machine_id", "failure_mode", "priority",
     "window": {"start", "end"}}

The gate reads the plant (tools ``list_machines``, ``get_production_schedule``,
``list_work_orders``) and proposes, with :func:`plan_moves`, where each production slot
of the machine that overlaps the window could go: the machine on the same line where it
can start earliest (not before the window starts), or the machine itself after the window
(not when the work order is ``critical``: the maintenance system refuses production on a
machine with an open critical work order, and so does this plan for every such machine).
Each proposal goes to the model in its own loop (the pre-filter: only slots that overlap
the window and have somewhere to go); the model decides and acts: its instructions move
the slot as proposed, but leave a *firm* one (a committed run, shown as ``firm``) to the
planner. With the offline ``scripted`` provider, the spec's ``model.script``
(``ctx.model``) does just that with ``move_production_slot``. A slot counts as moved only
when the maintenance system confirmed the move.

The outcome is published on ``maintenance.schedule`` (key: the machine id), audited as a
``decision`` per slot the model was asked about (``action: move`` or ``none``, with the
``signal_id``, the ``work_order_id``, the ``slot_id`` and the ``moved_slot_ids``; one
``none`` when no slot was), and answered as a data part::

    {"request_id", "signal_id", "work_order_id", "machine_id", "window",
     "action": "move"|"none", "moved_slot_ids",
     "moves": [{"slot_id", "product", "from_machine", "from_start", "from_end", "firm",
                "to_machine", "start", "moved", "answer"}]}

Tool calls carry the loop's idempotency keys ``<request_id>/<slot_id>/<step>/<n>``. A
request sent again (a redelivered alert) finds its slots already out of the window, so it
moves nothing more and answers ``action: none``.

Why a gate in code (as trading's ``compliance``): an instructed agent publishes nothing,
and the schedule arithmetic (which
slots overlap, where a slot fits) is what a regular-expression script cannot do; a real
model given the same instructions can read the schedule itself (the read tools are in its
allow-list) and is still shown the proposal. The Agent keeps ``instructions`` and
``model`` in its spec; the gate uses the same :data:`INSTRUCTIONS` and the spec's model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chorus_agents.domain import GatedInstructedAgent
from chorus_agents.handler import Context, Incoming, Reply
from chorus_agents.maintenance.common import (
    CMMS,
    SCHEDULE,
    MaintenanceError,
    instant,
    iso_minutes,
    request_json,
    required,
    tool_json,
)

"""The scripted model's rules for this agent."""
INSTRUCTIONS = (
    "You are the plant's production scheduler. You are told when a machine is taken out of "
    "production for maintenance and which production slot overlaps that window, with a "
    "proposed move to a free time on a machine of the same line. Move the slot with "
    "move_production_slot, as proposed unless the schedule shows a better free time. Never "
    "move production onto a machine with an open critical work order, and never move a firm "
    "slot (a committed run): leave it to the planner and say so. Answer in one sentence."
)


@dataclass(frozen=True)
class Slot:
    """A production slot as the maintenance system lists it."""

    slot_id: str
    machine_id: str
    product: str
    start: datetime
    end: datetime
    firm: bool = False

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> Slot:
        start, end = instant(value.get("start")), instant(value.get("end"))
        if start is None or end is None:
            raise MaintenanceError(f"production slot {value.get('slot_id')!r} has no times")
        return cls(
            str(value["slot_id"]),
            str(value["machine_id"]),
            str(value["product"]),
            start,
            end,
            value.get("firm") is True,
        )


def earliest_fit(
    busy: Sequence[tuple[datetime, datetime]], earliest: datetime, length: Any
) -> datetime:
    """The earliest start at or after ``earliest`` where ``length`` overlaps nothing busy."""
    for start in sorted({earliest, *(end for _, end in busy if end > earliest)}):
        if not any(start < b_end and b_start < start + length for b_start, b_end in busy):
            return start
    raise AssertionError("unreachable: the last busy end always fits")  # pragma: no cover


def plan_moves(
    machine_id: str,
    window: tuple[datetime, datetime],
    slots: Sequence[Slot],
    lines: Mapping[str, str],
    blocked: frozenset[str],
) -> list[dict[str, Any]]:
    """Where each slot of ``machine_id`` overlapping ``window`` should go (pure).

    ``lines`` maps machine ids to production lines; ``blocked`` names the machines no
    slot may go to (open critical work orders). A slot goes to the machine of the same
    line where it starts earliest (from the window's start on another machine, from its
    end on ``machine_id``), ties to another machine; without any, ``to_machine`` is
    ``None``.
    """
    begin, end = window
    moving = [s for s in slots if s.machine_id == machine_id and s.start < end and begin < s.end]
    # Moves are made one after the other: a slot not moved yet still holds its place.
    placed = {s.slot_id: (s.machine_id, s.start, s.end) for s in slots}
    line = lines.get(machine_id)
    candidates = sorted(m for m, ln in lines.items() if ln == line and m not in blocked)
    moves: list[dict[str, Any]] = []
    for slot in moving:
        move: dict[str, Any] = {
            "slot_id": slot.slot_id,
            "product": slot.product,
            "from_machine": slot.machine_id,
            "from_start": iso_minutes(slot.start),
            "from_end": iso_minutes(slot.end),
            "firm": slot.firm,
            "to_machine": None,
            "start": None,
        }
        length = slot.end - slot.start
        best: tuple[datetime, bool, str] | None = None
        for target in candidates:
            busy = [
                (b_start, b_end)
                for other, (m, b_start, b_end) in placed.items()
                if m == target and other != slot.slot_id
            ]
            earliest = end if target == machine_id else begin
            option = (earliest_fit(busy, earliest, length), target == machine_id, target)
            if best is None or option < best:
                best = option
        if best is not None:
            start, _, target = best
            placed[slot.slot_id] = (target, start, start + length)
            move.update(to_machine=target, start=iso_minutes(start))
        moves.append(move)
    return moves


def prompt(request: Mapping[str, Any], move: Mapping[str, Any]) -> str:
    """What the model is shown for one proposed move (the script matches its JSON)."""
    window = request["window"]
    head = (
        f"Maintenance request {request['request_id']}: work order {request['work_order_id']} "
        f"({request.get('failure_mode')}, {request.get('priority')}) takes machine "
        f"{request['machine_id']} out of production from {window['start']} to {window['end']}. "
        f"Production slot {move['slot_id']} ({move['product']}, {move['from_start']} to "
        f"{move['from_end']}{', firm' if move.get('firm') else ''}) overlaps it."
    )
    proposal = {
        "proposed_move": {
            "slot_id": move["slot_id"],
            "machine_id": move["to_machine"],
            "start": move["start"],
        }
    }
    return head + "\n" + json.dumps(proposal, ensure_ascii=False, sort_keys=True)


class ProductionScheduler(GatedInstructedAgent):
    """The ``production-scheduling`` agent; see the module docstring."""

    INSTRUCTIONS = INSTRUCTIONS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        request_id, machine_id, work_order_id = required(
            request, "request_id", "machine_id", "work_order_id", agent=ctx.agent
        )
        window = request.get("window") or {}
        begin, end = instant(window.get("start")), instant(window.get("end"))
        if begin is None or end is None:
            raise MaintenanceError(f"agent {ctx.agent}: request {request_id} has no window")
        machines = tool_json(await ctx.tools.call(CMMS, "list_machines", {}))["machines"]
        slots = tool_json(await ctx.tools.call(CMMS, "get_production_schedule", {}))["slots"]
        orders = tool_json(await ctx.tools.call(CMMS, "list_work_orders", {"open_only": True}))
        blocked = frozenset(
            o["machine_id"] for o in orders["work_orders"] if o.get("priority") == "critical"
        )
        moves = plan_moves(
            machine_id,
            (begin, end),
            [Slot.of(s) for s in slots],
            {m["machine_id"]: m["line"] for m in machines},
            blocked,
        )
        for move in moves:
            if move["to_machine"] is None:
                move.update(moved=False, answer="no machine of the line is free for it")
                continue
            reply, tools = await self.consult(
                ctx,
                prompt(request, move),
                task_id=f"{request_id}/{move['slot_id']}",
                context_id=message.context_id,
            )
            applied = tools.succeeded("move_production_slot", slot_id=move["slot_id"])
            if applied:
                move.update(to_machine=applied[-1].get("machine_id"))
                move.update(start=applied[-1].get("start"))
            move.update(moved=bool(applied), answer=reply.text)
        moved = [m["slot_id"] for m in moves if m["moved"]]
        outcome = {
            "request_id": request_id,
            "signal_id": request.get("signal_id"),
            "work_order_id": work_order_id,
            "machine_id": machine_id,
            "window": {"start": iso_minutes(begin), "end": iso_minutes(end)},
            "action": "move" if moved else "none",
            "moved_slot_ids": moved,
            "moves": moves,
        }
        ctx.publish(self.topic(SCHEDULE), outcome, key=machine_id)
        # One decision per slot the model was asked about (moved or left), so what the
        # model declined shows beside what it did; one ``none`` when it was asked nothing.
        asked: list[dict[str, Any] | None] = [
            m for m in moves if "answer" in m and m["to_machine"] is not None
        ]
        for one in asked or [None]:
            ctx.audit.record(
                "decision",
                action="move" if one and one["moved"] else "none",
                signal_id=outcome["signal_id"],
                work_order_id=work_order_id,
                machine_id=machine_id,
                slot_id=one["slot_id"] if one else None,
                moved_slot_ids=[one["slot_id"]] if one and one["moved"] else [],
            )
        summary = ", ".join(f"{m['slot_id']} -> {m['to_machine']} at {m['start']}" for m in moves)
        return Reply(text=f"{outcome['action']}: {summary or 'nothing overlaps'}", data=outcome)
