"""``traffic-monitoring``: confirms incidents and sets the response in motion.

A code-defined agent subscribed to ``traffic.signals``. ``congestion`` signals are
context and ignored (a slow segment alone is rush hour, not an incident). On an
``incident`` it confirms it on the signal's own data
(:func:`~chorus_agents.traffic.common.assess_incident`: both segments known and adjacent,
both congested by the job's rule) and then, in this order:

1. asks the ``signal-control-<id>`` agent of each affected intersection that has one (the
   ends of the two segments, among
   :data:`~chorus_agents.traffic.common.MANAGED_INTERSECTIONS`) to retime it;
2. asks ``emergency-response`` to send a unit under a pre-emption corridor.

Retiming comes first because the controllers refuse a new timing while an intersection
is pre-empted, and a pre-emption keeps the timing it finds: retimed first, the
intersections on the corridor go back to the incident plan, not the old one, when the
vehicle has passed.

Every incident signal ends in one record on ``traffic.incidents`` (key: the signal's
subject, ``<a>+<b>``)::

    {"incident", "segments", "mean_speeds_kmh", "vehicles", "confirmed", "reason", "site",
     "intersections", "window_end", "action": "respond"|"none", "plans"?, "dispatch"?}

and one ``decision`` audit record with the same ``incident`` (the signal id), after the
runtime's ``agent.call`` records whose ids the callees' records name as their cause: the
audit topic holds the chain signal -> retiming and signal -> pre-emption. Request ids
derive from the signal id, so a redelivered signal asks again with the same ids and the
callees' idempotency keys keep the controllers from acting twice. ``public-transport``
reads ``traffic.incidents``.
"""

from __future__ import annotations

from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.traffic.common import (
    EMERGENCY_AGENT,
    INCIDENTS,
    MANAGED_INTERSECTIONS,
    SIGNALS,
    Signal,
    TrafficError,
    answer_data,
    assess_incident,
    dumps,
    signal_agent,
)


class MonitoringAgent(Handler):
    """The ``traffic-monitoring`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(
        self,
        *,
        managed: tuple[str, ...] = MANAGED_INTERSECTIONS,
        topic_prefix: str = "",
    ) -> None:
        self.managed = frozenset(managed)
        self.signals = topic_prefix + SIGNALS
        self.incidents = topic_prefix + INCIDENTS

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        signal = Signal.parse(event.value)
        if signal is None or signal.kind != "incident":
            return
        assessment = assess_incident(signal)
        record: dict[str, Any] = {
            **assessment.record(),
            "window_end": signal.data.get("window_end"),
            "action": "none",
        }
        if assessment.confirmed:
            record["action"] = "respond"
            record["plans"] = await self._retime(signal, assessment.intersections, ctx)
            request = {
                "request_id": f"{signal.id}/dispatch",
                "incident": signal.id,
                "site": assessment.site,
                "segments": list(assessment.segments),
            }
            record["dispatch"] = answer_data(
                await ctx.agents.ask(EMERGENCY_AGENT, dumps(request)), agent=EMERGENCY_AGENT
            )
        ctx.publish(self.incidents, record, key=signal.subject)
        dispatch = record.get("dispatch") or {}
        ctx.audit.record(
            "decision",
            action=record["action"],
            incident=signal.id,
            signal_id=signal.id,
            confirmed=assessment.confirmed,
            reason=assessment.reason,
            site=assessment.site,
            retimed=[
                p["intersection"] for p in record.get("plans", ()) if p.get("status") == "retimed"
            ],
            vehicle_id=dispatch.get("vehicle_id"),
            corridor=dispatch.get("route"),
        )

    async def _retime(
        self, signal: Signal, intersections: tuple[str, ...], ctx: Context
    ) -> list[dict[str, Any]]:
        """Asks each managed intersection's agent to retime; one outcome per intersection."""
        plans: list[dict[str, Any]] = []
        for intersection in intersections:
            if intersection not in self.managed:
                plans.append({"intersection": intersection, "status": "unmanaged"})
                continue
            agent = signal_agent(intersection)
            request = {
                "request_id": f"{signal.id}/retime/{intersection}",
                "incident": signal.id,
                "intersection": intersection,
                "segments": list(signal.data.get("segments") or ()),
            }
            try:
                plans.append(answer_data(await ctx.agents.ask(agent, dumps(request)), agent=agent))
            except TrafficError as exc:
                # One controller's failure must not hold up the others or the dispatch.
                plans.append({"intersection": intersection, "status": "failed", "reason": str(exc)})
        return plans
