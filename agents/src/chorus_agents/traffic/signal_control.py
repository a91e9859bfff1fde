"""``signal-control-<id>``: retimes one intersection around an incident, within its bounds.

A code-defined agent answering A2A messages; one Agent resource per managed intersection
(:data:`~chorus_agents.traffic.common.MANAGED_INTERSECTIONS`), all running this handler,
which reads its intersection from its own name (``signal-control-a2`` controls ``A2``).
One agent per intersection because that is how a city runs its controllers: each has its
own inbox, audit trail and failure domain, and a controller's agent can be redeployed or
paused without touching the others. A request (from ``traffic-monitoring``)::

    {"request_id", "incident", "intersection", "segments": [a, b], "site"}

The agent reads its timing and its neighbours' (tools ``get_timing``,
``get_neighbour_timings``) and computes the plan with :func:`retime`: the phase serving a
congested segment that *arrives* at the intersection gets :data:`EXTENSION` seconds more
green (the queue drains), the phase feeding a congested segment that *leaves* it gets
that much less (no more traffic pushed into the jam). Coordination with the neighbours:
the cycle stays the same (so the green-wave offsets along the avenue still hold), the
seconds moving between phases; an extension that cannot fit is allowed to lengthen the
cycle only up to the longest cycle among the neighbours that are not pre-empted, and
never past the controller's maximum. The controller itself refuses any green outside its
phase's ``[min, max]``.

The plan is set with ``set_timing`` under the idempotency key ``plan:<request_id>``, and
the outcome published on ``traffic.signal-plans`` (key: the intersection), audited as a
``decision`` naming the incident and answered as a data part::

    {"request_id", "incident", "intersection", "status": "retimed"|"unchanged"|"preempted"
     |"refused", "approaches", "before", "after", "cycle_seconds", "neighbour_cycles",
     "rule"?, "reason"?}

An intersection under pre-emption keeps its timing (``preempted``); a refusal by the
controller is an outcome (``refused`` with its ``rule``), not a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.traffic.common import (
    SIGNAL_PLANS,
    SIGNALS_TOOL,
    TrafficError,
    intersection_of,
    phase_of,
    refusal_rule,
    request_json,
    tool_json,
)
from chorus_agents.traffic.network import SEGMENTS
from chorus_agents.traffic.signals import LOST_SECONDS_PER_PHASE, MAX_CYCLE_SECONDS

EXTENSION = 15.0
"""Seconds of green moved towards a congested approach."""


def approaches(intersection: str, segments: Iterable[str]) -> list[dict[str, str]]:
    """The congested segments at ``intersection``: ``inbound`` (arriving) or ``outbound``."""
    found = []
    for segment in sorted(set(segments)):
        start, end = SEGMENTS.get(segment, ("", ""))
        if end == intersection:
            found.append({"segment": segment, "phase": phase_of(segment), "role": "inbound"})
        elif start == intersection:
            found.append({"segment": segment, "phase": phase_of(segment), "role": "outbound"})
    return found


def retime(
    phases: Sequence[Mapping[str, Any]],
    found: Sequence[Mapping[str, str]],
    *,
    neighbour_cycles: Iterable[float] = (),
) -> dict[str, float]:
    """The new green seconds per phase for the approaches ``found`` (pure; see the module).

    ``phases`` are the controller's (``name``, ``green_seconds``, ``min_green``,
    ``max_green``). Returns every phase's green; equal to the current ones when there is
    nothing to change.
    """
    current = {str(p["name"]): float(p["green_seconds"]) for p in phases}
    low = {str(p["name"]): float(p["min_green"]) for p in phases}
    high = {str(p["name"]): float(p["max_green"]) for p in phases}
    inbound = {a["phase"] for a in found if a["role"] == "inbound"} & set(current)
    outbound = {a["phase"] for a in found if a["role"] == "outbound"} & set(current) - inbound
    greens = dict(current)
    for name in inbound:
        greens[name] = min(high[name], current[name] + EXTENSION)
    for name in outbound:
        greens[name] = max(low[name], current[name] - EXTENSION)
    lost = LOST_SECONDS_PER_PHASE * len(greens)
    cycle = sum(current.values()) + lost
    longest = max([cycle, *neighbour_cycles])
    allowed = min(MAX_CYCLE_SECONDS, longest) - lost
    target = sum(current.values())
    excess = sum(greens.values()) - target
    if excess > 0:
        # Take from the phases that gained nothing first, to keep the common cycle.
        for name in sorted(set(greens) - inbound):
            take = min(excess, greens[name] - low[name])
            greens[name] -= take
            excess -= take
        # What is left may lengthen the cycle up to the neighbours' longest; past that the
        # extensions shrink back.
        over = sum(greens.values()) - allowed
        for name in sorted(inbound):
            take = min(max(over, 0.0), greens[name] - current[name])
            greens[name] -= take
            over -= take
    elif excess < 0:
        # Freed seconds go to the cross phases, up to their maximum.
        for name in sorted(set(greens) - outbound):
            give = min(-excess, high[name] - greens[name])
            greens[name] += give
            excess += give
    return {name: round(green, 1) for name, green in greens.items()}


class SignalControlAgent(Handler):
    """A ``signal-control-<id>`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.signal_plans = topic_prefix + SIGNAL_PLANS

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        here = intersection_of(ctx.agent)
        if request.get("intersection") != here:
            raise TrafficError(
                f"agent {ctx.agent}: asked to retime {request.get('intersection')!r}, "
                f"it controls {here}"
            )
        request_id = str(request.get("request_id") or message.task_id)
        segments = request.get("segments")
        if not isinstance(segments, list):
            raise TrafficError(f"agent {ctx.agent}: a request without segments")
        found = approaches(here, (str(s) for s in segments))
        timing = tool_json(
            await ctx.tools.call(SIGNALS_TOOL, "get_timing", {"intersection_id": here})
        )
        neighbours = tool_json(
            await ctx.tools.call(SIGNALS_TOOL, "get_neighbour_timings", {"intersection_id": here})
        )["timings"]
        neighbour_cycles = {
            str(t["intersection_id"]): float(t["cycle_seconds"])
            for t in neighbours
            if t.get("preempted_by") is None
        }
        before = {str(p["name"]): float(p["green_seconds"]) for p in timing["phases"]}
        outcome: dict[str, Any] = {
            "request_id": request_id,
            "incident": request.get("incident"),
            "intersection": here,
            "approaches": found,
            "before": before,
            "after": before,
            "cycle_seconds": float(timing["cycle_seconds"]),
            "neighbour_cycles": neighbour_cycles,
        }
        after = retime(timing["phases"], found, neighbour_cycles=neighbour_cycles.values())
        if timing.get("preempted_by") is not None:
            outcome.update(status="preempted", reason=f"pre-empted for {timing['preempted_by']}")
        elif after == before:
            outcome.update(status="unchanged")
        else:
            result = await ctx.tools.call(
                SIGNALS_TOOL,
                "set_timing",
                {"intersection_id": here, "greens": after},
                idempotency_key=f"plan:{request_id}",
            )
            if result.is_error:
                outcome.update(status="refused", rule=refusal_rule(result.text), reason=result.text)
            else:
                changed = tool_json(result)
                outcome.update(
                    status="retimed",
                    after={str(p["name"]): float(p["green_seconds"]) for p in changed["phases"]},
                    cycle_seconds=float(changed["cycle_seconds"]),
                )
        ctx.publish(self.signal_plans, outcome, key=here)
        ctx.audit.record(
            "decision",
            action=outcome["status"],
            incident=outcome["incident"],
            signal_id=outcome["incident"],
            intersection=here,
            before=before,
            after=outcome["after"],
            rule=outcome.get("rule"),
        )
        return Reply(text=f"{here}: {outcome['status']}", data=outcome)
