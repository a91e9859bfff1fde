"""ICU vitals for the ICU domain, with a sepsis-like deterioration injected.

Every patient's monitor reports the seven NEWS2 parameters every ``interval_seconds``:
respiration rate (breaths/min), SpO2 (%), systolic blood pressure (mmHg), pulse
(beats/min), consciousness (0 alert, 1 new confusion, voice, pain or unresponsive),
temperature (°C) and supplemental oxygen (0 air, 1 oxygen). A stable patient wanders
around their own baseline inside the NEWS2 zero-score ranges, so a quiet run scores 0
throughout (:mod:`.news2`). A :class:`SepsisDeterioration` makes one patient's pulse and
breathing rise, blood pressure and SpO2 fall and a fever set in over ``ramp_seconds``,
then confusion, and oxygen once SpO2 drops below 92 %: the score climbs through medium
(5 to 6) into high (7 or more). The Flink ICU job should compute NEWS2 and wake the
agents as the risk rises.

Each vital is ``{"patient_id", "parameter", "value", "event_time"}`` (event time as
``YYYY-MM-DD HH:MM:SS.fff`` in UTC), keyed by patient id: the input of the Flink ICU job
on topic ``icu.vitals``. The generator is pure (an iterator of records in event-time
order); writing them to Kafka is the caller's business.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chorus_agents.icu.ehr import PATIENTS
from chorus_agents.icu.news2 import PARAMETERS

TOPIC = "icu.vitals"
PATIENT_IDS: tuple[str, ...] = tuple(p.patient_id for p in PATIENTS)

NORMAL_RANGES: Mapping[str, tuple[float, float]] = {
    "respiration_rate": (12.0, 20.0),
    "spo2": (96.0, 100.0),
    "supplemental_oxygen": (0.0, 0.0),
    "systolic_bp": (111.0, 219.0),
    "pulse": (51.0, 90.0),
    "consciousness": (0.0, 0.0),
    "temperature": (36.1, 38.0),
}
"""The NEWS2 zero-score range of each parameter; a stable patient stays inside them."""

_BASELINE: Mapping[str, tuple[float, float, float]] = {
    # parameter: (lowest baseline, highest baseline, noise sd)
    "respiration_rate": (14.0, 17.0, 0.8),
    "spo2": (97.0, 98.5, 0.5),
    "systolic_bp": (118.0, 135.0, 3.0),
    "pulse": (64.0, 80.0, 2.5),
    "temperature": (36.5, 37.2, 0.1),
}
_DECIMALS: Mapping[str, int] = {"temperature": 1}


@dataclass(frozen=True)
class SepsisDeterioration:
    """An injected incident: ``patient_id`` starts to deteriorate at ``at_seconds``."""

    patient_id: str
    at_seconds: float
    ramp_seconds: float = 2400.0
    pulse_rise: float = 55.0
    respiration_rise: float = 14.0
    systolic_fall: float = 45.0
    spo2_fall: float = 8.0
    temperature_rise: float = 2.4
    confusion_at: float = 0.8
    """Share of the ramp after which the patient is newly confused."""

    @property
    def incident_id(self) -> str:
        return f"sepsis:{self.patient_id}@{self.at_seconds:g}"

    def progress(self, t: float) -> float:
        """How far the deterioration has gone at ``t`` seconds in, from 0 to 1."""
        return min(1.0, max(0.0, (t - self.at_seconds) / self.ramp_seconds))

    def shift(self, t: float) -> dict[str, float]:
        """What is added to each parameter's value at ``t`` seconds in."""
        p = self.progress(t)
        return {
            "pulse": self.pulse_rise * p,
            "respiration_rate": self.respiration_rise * p,
            "systolic_bp": -self.systolic_fall * p,
            "spo2": -self.spo2_fall * p,
            "temperature": self.temperature_rise * p,
            "consciousness": 1.0 if p >= self.confusion_at else 0.0,
        }


@dataclass(frozen=True)
class Vital:
    patient_id: str
    parameter: str
    value: float
    event_time: datetime

    def record(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "parameter": self.parameter,
            "value": self.value,
            "event_time": self.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }


def vitals(
    patients: Sequence[str] = PATIENT_IDS,
    *,
    seconds: float,
    interval_seconds: float = 60.0,
    start: datetime | None = None,
    incidents: tuple[SepsisDeterioration, ...] = (),
    seed: int = 7,
) -> Iterator[Vital]:
    """Every parameter of every patient every ``interval_seconds``, in event-time order.

    Within one instant, patients come in id order and parameters in
    :data:`~chorus_agents.icu.news2.PARAMETERS` order.
    """
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    names = sorted(patients)
    unknown = {i.patient_id for i in incidents} - set(names)
    if unknown:
        raise ValueError(f"incidents name patients not in the run: {sorted(unknown)}")
    base = {
        patient: {p: rng.uniform(lo, hi) for p, (lo, hi, _) in _BASELINE.items()}
        for patient in names
    }
    t = 0.0
    while t < seconds:
        for patient in names:
            values: dict[str, float] = {"consciousness": 0.0, "supplemental_oxygen": 0.0}
            for parameter, (_, _, noise) in _BASELINE.items():
                lo, hi = NORMAL_RANGES[parameter]
                # A stable patient's noise stays inside the zero-score range.
                value = base[patient][parameter] + rng.gauss(0.0, noise)
                values[parameter] = min(hi, max(lo, value))
            for incident in incidents:
                if incident.patient_id == patient:
                    for parameter, delta in incident.shift(t).items():
                        values[parameter] = values[parameter] + delta
            values["consciousness"] = min(1.0, values["consciousness"])
            values["spo2"] = min(100.0, values["spo2"])
            if values["spo2"] < 92.0:
                values["supplemental_oxygen"] = 1.0
            for parameter in PARAMETERS:
                value = round(values[parameter], _DECIMALS.get(parameter, 0))
                yield Vital(patient, parameter, float(value), start + timedelta(seconds=t))
        t += interval_seconds
