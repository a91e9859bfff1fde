"""``vital-signs``: assesses NEWS2 deteriorations and missing vitals, and sets things moving.

A code-defined agent subscribed to ``icu.signals``:

- ``news2_score``: remembered per patient (the window's seven values and a short score
  history, for the trend); no action. A quiet ward produces only these.
- ``deterioration``: assessed (:func:`assess`: the band, the score against the previous
  one, the trend over the remembered scores, the vitals of the scored window, else the
  monitor's latest), then the monitor's interval is shortened to the band's
  (:data:`MONITORING_SECONDS`, never lengthened) with ``set_monitoring_interval``; in the
  medium or high band it asks ``care-coordination`` to escalate and ``treatment-advice``
  for treatment, by A2A. A rise within the low bands is watched, not escalated.
- ``missing_vitals``: asks ``care-coordination`` to have the missing observations taken.

Every deterioration and missing-vitals signal ends in one record on ``icu.assessments``
(key: the patient id)::

    {"incident", "kind", "patient_id", "time", "action": "escalate"|"watch"|"observe",
     "score"?, "band"?, "previous_score"?, "previous_band"?, "reasons"?, "trend"?,
     "vitals"?, "vitals_source"?, "monitoring_interval_seconds"?, "missing"?,
     "escalation"?, "advice"?}

and one ``decision`` audit record with the same ``incident`` (the signal id), after the
runtime's ``agent.call`` records that the callees' records name as their cause: the audit
topic holds the chain signal -> assessment -> advice -> medication. The interval change
carries the idempotency key ``interval:<signal id>``.

The remembered scores live in the replica's memory: the signals are keyed by patient, so
one replica sees all of a patient's. After a restart the first deterioration falls back
to the monitor's vitals, and the trend has one step (``previous_score``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_agents.icu.common import (
    ASSESSMENTS,
    CLINICAL,
    SIGNALS,
    Signal,
    answer_data,
    band_rank,
    dumps,
    number,
    tool_json,
)
from chorus_agents.icu.news2 import PARAMETERS

TREATMENT_AGENT = "treatment-advice"
COORDINATION_AGENT = "care-coordination"

MONITORING_SECONDS: Mapping[str, int] = {"high": 15, "medium": 30, "low-medium": 45, "low": 45}
"""How often the monitor reports once a patient deteriorated into a band, in seconds."""
HISTORY = 12
"""Scores remembered per patient for the trend."""


@dataclass
class PatientState:
    """What ``vital-signs`` remembers of a patient from ``news2_score`` signals."""

    scores: deque[int] = field(default_factory=lambda: deque(maxlen=HISTORY))
    window_time: str = ""
    """The envelope ``time`` (window end) of the latest score."""
    vitals: dict[str, Any] = field(default_factory=dict)


def trend(scores: list[int], score: int | None, previous: int | None) -> dict[str, Any]:
    """The direction and change of the score, with the scores it saw (pure)."""
    seen = list(scores)
    if score is not None and (not seen or seen[-1] != score):
        seen.append(score)
    before = previous if previous is not None else (seen[-2] if len(seen) > 1 else None)
    change = score - before if score is not None and before is not None else 0
    direction = "rising" if change > 0 else "falling" if change < 0 else "steady"
    return {"direction": direction, "change": change, "scores": seen}


def assess(
    signal: Signal, *, remembered: PatientState | None, monitor: Mapping[str, Any]
) -> dict[str, Any]:
    """The assessment of a ``deterioration`` (pure): band, trend, vitals, what to do.

    ``monitor`` is the answer of ``get_latest_vitals``; the vitals of the scored window
    (from its ``news2_score``) are preferred to the monitor's latest: they are the values
    the score was computed from, while the monitor (fed live from ``icu.vitals``) may
    already hold newer ones by the time the window is scored, or none without a feed.
    """
    rank = band_rank(signal.band)
    if remembered is not None and remembered.window_time == signal.time and remembered.vitals:
        vitals, source = dict(remembered.vitals), "signal"
    else:
        latest = monitor.get("vitals") or {}
        vitals = {
            p: latest[p].get("value")
            for p in PARAMETERS
            if isinstance(latest.get(p), Mapping) and "value" in latest[p]
        }
        source = "monitor" if vitals else "none"
    current = int(number(monitor.get("monitoring_interval_seconds")) or 0)
    target = MONITORING_SECONDS.get(signal.band, MONITORING_SECONDS["low"])
    return {
        "incident": signal.id,
        "kind": signal.kind,
        "patient_id": signal.patient_id,
        "time": signal.time,
        "action": "escalate" if rank >= band_rank("medium") else "watch",
        "score": signal.score,
        "band": signal.band,
        "previous_score": signal.previous_score,
        "previous_band": signal.data.get("previous_band"),
        "reasons": list(signal.reasons),
        "trend": trend(
            list(remembered.scores) if remembered else [], signal.score, signal.previous_score
        ),
        "vitals": vitals,
        "vitals_source": source,
        "monitoring_interval_seconds": min(current, target) if current > 0 else target,
    }


class VitalSignsAgent(Handler):
    """The ``vital-signs`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.signals = topic_prefix + SIGNALS
        self.assessments = topic_prefix + ASSESSMENTS
        self.patients: dict[str, PatientState] = {}

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        if event.topic != self.signals:
            return
        signal = Signal.parse(event.value)
        if signal is None:
            return
        if signal.kind == "news2_score":
            self.remember(signal)
        elif signal.kind == "deterioration":
            await self.deterioration(signal, ctx)
        elif signal.kind == "missing_vitals":
            await self.missing(signal, ctx)

    def remember(self, signal: Signal) -> None:
        state = self.patients.setdefault(signal.patient_id, PatientState())
        if signal.score is not None:
            state.scores.append(signal.score)
        state.window_time = signal.time
        state.vitals = {p: signal.data[p] for p in PARAMETERS if p in signal.data}

    async def deterioration(self, signal: Signal, ctx: Context) -> None:
        monitor = tool_json(
            await ctx.tools.call(CLINICAL, "get_latest_vitals", {"patient_id": signal.patient_id})
        )
        assessment = assess(
            signal, remembered=self.patients.get(signal.patient_id), monitor=monitor
        )
        interval = assessment["monitoring_interval_seconds"]
        if interval != monitor.get("monitoring_interval_seconds"):
            changed = tool_json(
                await ctx.tools.call(
                    CLINICAL,
                    "set_monitoring_interval",
                    {"patient_id": signal.patient_id, "seconds": interval},
                    idempotency_key=f"interval:{signal.id}",
                )
            )
            assessment["monitoring_interval_seconds"] = changed["monitoring_interval_seconds"]
        if assessment["action"] == "escalate":
            request = {
                "kind": "deterioration",
                "incident": signal.id,
                "patient_id": signal.patient_id,
                "score": signal.score,
                "band": signal.band,
                "reasons": assessment["reasons"],
            }
            assessment["escalation"] = answer_data(
                await ctx.agents.ask(COORDINATION_AGENT, dumps(request)), agent=COORDINATION_AGENT
            )
            advice_request = {k: v for k, v in assessment.items() if k != "action"}
            assessment["advice"] = answer_data(
                await ctx.agents.ask(TREATMENT_AGENT, dumps(advice_request)),
                agent=TREATMENT_AGENT,
            )
        ctx.publish(self.assessments, assessment, key=signal.patient_id)
        advice = assessment.get("advice") or {}
        ctx.audit.record(
            "decision",
            action=assessment["action"],
            incident=signal.id,
            patient_id=signal.patient_id,
            score=signal.score,
            band=signal.band,
            trend=assessment["trend"]["direction"],
            monitoring_interval_seconds=assessment["monitoring_interval_seconds"],
            escalation=(assessment.get("escalation") or {}).get("kind"),
            advice=advice.get("action"),
        )

    async def missing(self, signal: Signal, ctx: Context) -> None:
        request = {
            "kind": "missing_vitals",
            "incident": signal.id,
            "patient_id": signal.patient_id,
            "missing": list(signal.missing),
        }
        escalation = answer_data(
            await ctx.agents.ask(COORDINATION_AGENT, dumps(request)), agent=COORDINATION_AGENT
        )
        assessment = {
            "incident": signal.id,
            "kind": signal.kind,
            "patient_id": signal.patient_id,
            "time": signal.time,
            "action": "observe",
            "missing": list(signal.missing),
            "escalation": escalation,
        }
        ctx.publish(self.assessments, assessment, key=signal.patient_id)
        ctx.audit.record(
            "decision",
            action="observe",
            incident=signal.id,
            patient_id=signal.patient_id,
            missing=",".join(signal.missing),
            escalation=escalation.get("kind"),
        )
