"""``equipment-monitoring``: diagnoses maintenance alerts and asks for a work order.

A code-defined agent subscribed to ``maintenance.signals``. An ``anomaly`` alone is not
an incident: the agent only remembers the machine's last :data:`TRACKED` anomalies (their
values and z-scores), in memory. A ``maintenance_alert`` (the Flink job saw
``consecutive_anomalies`` anomalous readings in a row) is diagnosed from the anomalies of
its run (``first_time`` to ``last_time``) with :func:`diagnose`:

- the leading metric is the one with the larger mean ``|z|`` over the run: vibration leads
  in a failing bearing (``bearing_wear``: a spalled race vibrates long before it heats),
  temperature in ``overheating`` (lubrication, cooling); without the run's anomalies (the
  agent restarted, or the alert overtook them) the mode is ``inspection``;
- the priority comes from the run's peaks: ``critical`` at a vibration of at least
  :data:`TRIP_VIBRATION` mm/s (ISO 10816 zone D: damage) or a temperature of at least
  :data:`TRIP_TEMPERATURE` °C, ``high`` at :data:`ALARM_VIBRATION` mm/s,
  :data:`ALARM_TEMPERATURE` °C or an anomaly score of :data:`HIGH_SCORE`, else ``medium``.

The diagnosis is sent to ``maintenance-planning`` by A2A (it opens, supplies and schedules
the work order, and has production moved), then published on ``maintenance.diagnoses``
(key: the machine id) with the planner's answer under ``plan``::

    {"diagnosis_id", "signal_id", "machine_id", "time", "failure_mode", "priority",
     "leading", "evidence": {...}, "plan": {"status", "work_order_id", ...}}

and audited as a ``decision`` with the ``signal_id`` and the ``work_order_id``. The
diagnosis id derives from the signal id, so a redelivered alert asks again with the same
ids and the planner's idempotency keys keep the maintenance system from acting twice.
A planner that answers with a failed task is an outcome (``plan.status: failed``), not a
reason to retry the alert.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.maintenance.common import (
    ALERT,
    ANOMALY,
    DIAGNOSES,
    SIGNALS,
    MaintenanceError,
    Signal,
    answer_data,
    dumps,
    instant,
    number,
)

PLANNING_AGENT = "maintenance-planning"
TRACKED = 64
"""Anomalies remembered per machine: a run longer than this is diagnosed from its tail."""
TRIP_VIBRATION = 7.1
ALARM_VIBRATION = 4.5
TRIP_TEMPERATURE = 85.0
ALARM_TEMPERATURE = 70.0
HIGH_SCORE = 10.0

FAILURE_MODES = {"vibration": "bearing_wear", "temperature": "overheating", "unknown": "inspection"}
"""The failure mode a leading metric points to."""


@dataclass(frozen=True)
class Anomaly:
    """What an ``anomaly`` signal says about one reading."""

    time: datetime
    score: float
    vibration: float
    temperature: float
    vibration_z: float
    temperature_z: float

    @classmethod
    def of(cls, signal: Signal) -> Anomaly | None:
        time = signal.instant
        if time is None:
            return None
        data = signal.data
        return cls(
            time=time,
            score=number(data.get("score")),
            vibration=number(data.get("vibration")),
            temperature=number(data.get("temperature")),
            vibration_z=number(data.get("vibration_z")),
            temperature_z=number(data.get("temperature_z")),
        )


def priority_for(max_score: float, peak_vibration: float, peak_temperature: float) -> str:
    """The work order's priority from the run's peaks (pure; see the module docstring)."""
    if peak_vibration >= TRIP_VIBRATION or peak_temperature >= TRIP_TEMPERATURE:
        return "critical"
    if (
        peak_vibration >= ALARM_VIBRATION
        or peak_temperature >= ALARM_TEMPERATURE
        or max_score >= HIGH_SCORE
    ):
        return "high"
    return "medium"


def diagnose(alert: Signal, seen: Sequence[Anomaly]) -> dict[str, Any]:
    """The diagnosis of ``alert`` from the machine's anomalies ``seen`` (pure)."""
    first = instant(alert.data.get("first_time"))
    last = instant(alert.data.get("last_time")) or alert.instant
    run = [a for a in seen if first is not None and last is not None and first <= a.time <= last]
    vibration_z = sum(abs(a.vibration_z) for a in run) / len(run) if run else 0.0
    temperature_z = sum(abs(a.temperature_z) for a in run) / len(run) if run else 0.0
    if not run:
        leading = "unknown"
    else:
        leading = "vibration" if vibration_z >= temperature_z else "temperature"
    max_score = number(alert.data.get("max_score"))
    peak_vibration = max((a.vibration for a in run), default=0.0)
    peak_temperature = max((a.temperature for a in run), default=0.0)
    return {
        "diagnosis_id": f"{alert.id}/diagnosis",
        "signal_id": alert.id,
        "machine_id": alert.machine_id,
        "time": alert.time,
        "failure_mode": FAILURE_MODES[leading],
        "priority": priority_for(max_score, peak_vibration, peak_temperature),
        "leading": leading,
        "evidence": {
            "anomalies_seen": len(run),
            "anomalies": int(number(alert.data.get("anomalies"))),
            "first_time": alert.data.get("first_time"),
            "last_time": alert.data.get("last_time"),
            "max_score": round(max_score, 3),
            "mean_vibration_z": round(vibration_z, 3),
            "mean_temperature_z": round(temperature_z, 3),
            "peak_vibration": round(peak_vibration, 3),
            "peak_temperature": round(peak_temperature, 2),
        },
    }


class EquipmentMonitor(Handler):
    """The ``equipment-monitoring`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "", tracked: int = TRACKED) -> None:
        self.signals = topic_prefix + SIGNALS
        self.diagnoses = topic_prefix + DIAGNOSES
        self.tracked = tracked
        self.anomalies: dict[str, deque[Anomaly]] = {}

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        signal = Signal.parse(event.value)
        if signal is None:
            return
        if signal.kind == ANOMALY:
            anomaly = Anomaly.of(signal)
            if anomaly is not None:
                recent = self.anomalies.setdefault(signal.machine_id, deque(maxlen=self.tracked))
                recent.append(anomaly)
            return
        if signal.kind != ALERT:
            return
        diagnosis = diagnose(signal, tuple(self.anomalies.get(signal.machine_id, ())))
        try:
            plan = answer_data(
                await ctx.agents.ask(PLANNING_AGENT, dumps(diagnosis)), agent=PLANNING_AGENT
            )
        except MaintenanceError as failed:
            plan = {"status": "failed", "reason": str(failed)}
        published = {**diagnosis, "plan": plan}
        ctx.publish(self.diagnoses, published, key=signal.machine_id)
        ctx.audit.record(
            "decision",
            action="diagnose",
            signal_id=signal.id,
            diagnosis_id=diagnosis["diagnosis_id"],
            machine_id=signal.machine_id,
            failure_mode=diagnosis["failure_mode"],
            priority=diagnosis["priority"],
            leading=diagnosis["leading"],
            plan_status=plan.get("status"),
            work_order_id=plan.get("work_order_id"),
        )
