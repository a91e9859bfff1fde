"""``emergency-response``: sends a unit to an incident under a pre-emption corridor.

A code-defined agent answering A2A messages. A dispatch request (from
``traffic-monitoring``, for a confirmed incident) is a JSON object::

    {"request_id", "incident", "site", "segments"}

The unit comes from the nearest of :data:`STATIONS`; its route (:func:`corridor`) is the
shortest path over adjacent intersections from the station to the nearer end of the site
segment, then along it to the other end, so the vehicle reaches the scene and the
corridor covers the accident's segment. The route is pre-empted with the controllers'
``preempt_route`` (green held along it until cleared) for the vehicle
``<unit>/<incident>``, under the idempotency key ``preempt:<request_id>``: a request sent
again (a redelivered signal) returns the first pre-emption. The outcome, published on
``traffic.dispatch`` (key: the site), audited as a ``decision`` and answered as a data
part::

    {"request_id", "incident", "site", "unit", "station", "vehicle_id", "route",
     "status": "preempted"|"refused", "greens"?, "rule"?, "reason"?}

A corridor the controllers refuse (an intersection already pre-empted for another
vehicle: rule ``preemption_conflict``) is an outcome; the unit still goes, without green.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.traffic.common import (
    DISPATCH,
    SIGNALS_TOOL,
    TrafficError,
    refusal_rule,
    request_json,
    tool_json,
)
from chorus_agents.traffic.network import INTERSECTIONS, SEGMENTS, adjacent

STATIONS: Mapping[str, str] = {"ems-east": "A3", "ems-west": "B1"}
"""Emergency units and the intersection each is stationed at."""


def shortest_path(start: str, goal: str) -> tuple[str, ...]:
    """The shortest route over adjacent intersections (either direction), ties by name."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            break
        for there in adjacent(here):
            if there not in previous:
                previous[there] = here
                queue.append(there)
    if goal not in previous:
        raise TrafficError(f"no route from {start} to {goal}")
    path = [goal]
    while (step := previous[path[-1]]) is not None:
        path.append(step)
    return tuple(reversed(path))


def corridor(site: str, stations: Mapping[str, str] = STATIONS) -> tuple[str, tuple[str, ...]]:
    """The unit sent to an incident on segment ``site`` and its route (pure; see the module)."""
    if site not in SEGMENTS:
        raise TrafficError(f"incident site {site!r} is not a segment ({', '.join(SEGMENTS)})")
    start, end = SEGMENTS[site]
    best: tuple[int, int, str, tuple[str, ...]] | None = None
    for unit, station in sorted(stations.items()):
        if station not in INTERSECTIONS:
            raise TrafficError(f"unit {unit}: station {station!r} is not an intersection")
        # Prefer entering the segment at its start (the direction of travel) on a tie.
        for rank, (near, far) in enumerate(((start, end), (end, start))):
            path = shortest_path(station, near)
            route = (*path, far) if far not in path else path
            candidate = (len(path), rank, unit, route)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
    if best is None:
        raise TrafficError("no emergency unit is stationed anywhere")
    return best[2], best[3]


class EmergencyAgent(Handler):
    """The ``emergency-response`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.dispatch = topic_prefix + DISPATCH

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        try:
            request_id = str(request["request_id"])
            incident = str(request["incident"])
            site = str(request["site"])
        except KeyError as exc:
            raise TrafficError(f"agent {ctx.agent}: a dispatch request without {exc}") from None
        unit, route = corridor(site)
        vehicle = f"{unit}/{incident}"
        outcome: dict[str, Any] = {
            "request_id": request_id,
            "incident": incident,
            "site": site,
            "unit": unit,
            "station": STATIONS[unit],
            "vehicle_id": vehicle,
            "route": list(route),
        }
        result = await ctx.tools.call(
            SIGNALS_TOOL,
            "preempt_route",
            {"vehicle_id": vehicle, "route": list(route)},
            idempotency_key=f"preempt:{request_id}",
        )
        if result.is_error:
            outcome.update(status="refused", rule=refusal_rule(result.text), reason=result.text)
        else:
            preemption = tool_json(result)
            outcome.update(status="preempted", greens=[list(g) for g in preemption["greens"]])
        ctx.publish(self.dispatch, outcome, key=site)
        ctx.audit.record(
            "decision",
            action="preempt" if outcome["status"] == "preempted" else "dispatch-without-corridor",
            incident=incident,
            signal_id=incident,
            vehicle_id=vehicle,
            route=list(route),
            status=outcome["status"],
            rule=outcome.get("rule"),
        )
        return Reply(text=f"{unit} to {site}: {outcome['status']}", data=outcome)
