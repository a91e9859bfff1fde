"""What the traffic agents share: the signal envelope, the incident, topics, names, wire shapes.

Signals come from ``chorus_flink.jobs.traffic`` on ``traffic.signals`` as CloudEvents-style
envelopes ``{specversion, id, source, type, kind, subject, time, data}``. A ``congestion``
is keyed by its segment; an ``incident`` (two adjacent segments congested in the same
window) by ``<a>+<b>`` with ``data.segments`` ``[a, b]`` and ``data.mean_speeds_kmh`` in
the same order. An incident is named by its signal's ``id`` (deterministic:
``incident:<a>+<b>:<window end>``), and every agent carries that id as ``incident`` in
what it publishes and audits, so a trace follows signal -> retiming -> pre-emption.
Each ``decision`` audit record also carries it as ``signal_id``: an id-like key, which
``chorus trace <signal id>`` searches (:mod:`chorus_agents.trace`).

The *site* of an incident is the slower of its two segments (the accident; the other
holds the queue behind it). A segment is served by the ``east-west`` phase of the
intersections at its ends when it runs along an avenue (same row letter), else by
``north-south`` (see :mod:`.network`).

Agents talk to each other with JSON objects as the A2A message text, and answer with a
data part (:func:`answer_data` reads it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chorus_agents.domain.wire import DomainWire, Envelope, number
from chorus_agents.domain.wire import dumps as dumps
from chorus_agents.domain.wire import refusal_rule as refusal_rule
from chorus_agents.handler import HandlerError
from chorus_agents.traffic.network import NEIGHBOURS, SEGMENTS

SIGNALS_TOOL = "signals"
"""The Tool resource of the signal controllers' MCP server."""
READINGS = "traffic.readings"
"""The readings generator's output, the Flink job's input."""
SIGNALS = "traffic.signals"
INCIDENTS = "traffic.incidents"
SIGNAL_PLANS = "traffic.signal-plans"
DISPATCH = "traffic.dispatch"
ADVISORIES = "traffic.transit-advisories"

MONITORING_AGENT = "traffic-monitoring"
EMERGENCY_AGENT = "emergency-response"
SIGNAL_AGENT_PREFIX = "signal-control-"
MANAGED_INTERSECTIONS: tuple[str, ...] = ("A1", "A2", "B1", "B2")
"""The intersections that have a ``signal-control-<id>`` agent (the manifests say the same;
a test compares them). The others keep their fixed plan."""

FREE_FLOW_KMH = 50.0
CONGESTED_RATIO = 0.5
MIN_VEHICLES = 10
"""The Flink job's congestion rule (its defaults), checked again on confirmation."""


class TrafficError(HandlerError):
    """An agent of the traffic domain could not do its part (the message says which)."""


def signal_agent(intersection: str) -> str:
    """The name of the agent that controls ``intersection``'s signals (``signal-control-a2``)."""
    return SIGNAL_AGENT_PREFIX + intersection.lower()


def intersection_of(agent: str) -> str:
    """The intersection a ``[<namespace>/]signal-control-<id>`` agent controls (``A2``)."""
    name = agent.rpartition("/")[2]
    if not name.startswith(SIGNAL_AGENT_PREFIX) or name == SIGNAL_AGENT_PREFIX:
        raise TrafficError(f"agent {agent}: a signal-control agent is named signal-control-<id>")
    return name[len(SIGNAL_AGENT_PREFIX) :].upper()


def phase_of(segment: str) -> str:
    """The phase that serves ``segment`` at its two intersections."""
    start, end = SEGMENTS[segment]
    return "east-west" if start[0] == end[0] else "north-south"


@dataclass(frozen=True)
class Signal:
    """One signal of ``traffic.signals``."""

    id: str
    kind: str
    subject: str
    time: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> Signal | None:
        """The signal in a record's parsed value; ``None`` when it is not an envelope."""
        found = Envelope.parse(value)
        if found is None:
            return None
        return cls(found.id, found.kind, found.subject, found.time, found.data)


@dataclass(frozen=True)
class Assessment:
    """What the monitoring agent makes of an ``incident`` signal (:func:`assess_incident`)."""

    incident: str
    segments: tuple[str, ...]
    mean_speeds_kmh: tuple[float, ...]
    vehicles: int
    confirmed: bool
    reason: str
    site: str | None = None
    intersections: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "segments": list(self.segments),
            "mean_speeds_kmh": list(self.mean_speeds_kmh),
            "vehicles": self.vehicles,
            "confirmed": self.confirmed,
            "reason": self.reason,
            "site": self.site,
            "intersections": list(self.intersections),
        }


def assess_incident(signal: Signal) -> Assessment:
    """Confirms an ``incident`` signal on its own data (pure).

    Confirmed when its two segments exist and are neighbours in the road network, and
    each is congested by the job's rule (mean speed below :data:`CONGESTED_RATIO` of
    :data:`FREE_FLOW_KMH`, together at least twice :data:`MIN_VEHICLES`): a signal from
    a job configured with another network, or a corrupt one, is not acted on.
    """
    raw_segments = signal.data.get("segments")
    raw_speeds = signal.data.get("mean_speeds_kmh")
    segments = tuple(str(s) for s in raw_segments) if isinstance(raw_segments, list) else ()
    speeds = tuple(number(v) for v in raw_speeds) if isinstance(raw_speeds, list) else ()
    vehicles = int(number(signal.data.get("vehicles")))
    base = Assessment(signal.id, segments, speeds, vehicles, confirmed=False, reason="")

    def refused(reason: str) -> Assessment:
        return replace(base, reason=reason)

    if len(segments) != 2 or len(speeds) != 2:
        return refused("an incident names two segments and their two speeds")
    unknown = [s for s in segments if s not in SEGMENTS]
    if unknown:
        return refused(f"unknown segments {', '.join(unknown)}")
    a, b = segments
    if b not in NEIGHBOURS[a]:
        return refused(f"segments {a} and {b} are not neighbours")
    limit = CONGESTED_RATIO * FREE_FLOW_KMH
    if max(speeds) >= limit:
        return refused(
            f"mean speeds {speeds[0]:g} and {speeds[1]:g} km/h: not both below {limit:g}"
        )
    if vehicles < 2 * MIN_VEHICLES:
        return refused(f"{vehicles} vehicles: too few to be a jam")
    site = a if speeds[0] <= speeds[1] else b
    intersections = tuple(sorted({i for s in segments for i in SEGMENTS[s]}))
    return replace(
        base,
        confirmed=True,
        reason=f"{a} and {b} congested together, slowest {site}",
        site=site,
        intersections=intersections,
    )


WIRE = DomainWire(TrafficError)
tool_json = WIRE.tool_json
request_json = WIRE.request_json
answer_data = WIRE.answer_data
