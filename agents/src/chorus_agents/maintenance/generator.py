"""Machine telemetry for the maintenance domain, with a bearing failure injected.

Every machine reports its vibration (RMS velocity, mm/s) and its bearing housing
temperature (°C) every ``interval_seconds``. A healthy machine wanders around its own
baseline (vibration 1.0 to 2.0 mm/s, in ISO 10816 zone A/B; temperature 42 to 55 °C)
and stays within :data:`NORMAL_VIBRATION` and :data:`NORMAL_TEMPERATURE`. A
:class:`BearingFailure` makes one machine's vibration climb over ``ramp_seconds``
(slowly, then faster, as a spalled bearing does) and its temperature follow
``temperature_lag_seconds`` later: the Flink maintenance job should see the vibration
trend first, then the heat, and the agents open a work order before the machine stops.

Each reading is ``{"machine_id", "vibration", "temperature", "event_time"}`` (event time as
``YYYY-MM-DD HH:MM:SS.fff`` in UTC), keyed by machine id: the input of the Flink
maintenance job on topic ``maintenance.telemetry``. The generator is pure (an iterator of
records in event-time order); writing them to Kafka is the caller's business.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chorus_agents.maintenance.cmms import FLEET

TOPIC = "maintenance.telemetry"
MACHINES: tuple[str, ...] = tuple(m.machine_id for m in FLEET)
NORMAL_VIBRATION = (0.5, 2.8)
"""mm/s RMS: ISO 10816-3 zones A and B for a medium machine on a rigid foundation."""
NORMAL_TEMPERATURE = (35.0, 65.0)
"""°C at the bearing housing of a healthy machine."""


@dataclass(frozen=True)
class BearingFailure:
    """An injected incident: ``machine_id``'s bearing starts to fail at ``at_seconds``."""

    machine_id: str
    at_seconds: float
    ramp_seconds: float = 600.0
    peak_vibration: float = 9.0
    """mm/s added to the baseline at the end of the ramp (ISO zone D starts near 7.1)."""
    temperature_lag_seconds: float = 180.0
    temperature_rise: float = 30.0

    @property
    def incident_id(self) -> str:
        return f"bearing-failure:{self.machine_id}@{self.at_seconds:g}"

    def shock(self, t: float) -> tuple[float, float]:
        """The vibration (mm/s) and temperature (°C) added at ``t`` seconds into the run."""

        def progress(since: float) -> float:
            into = t - since
            if into <= 0:
                return 0.0
            # Quadratic: a failing bearing degrades slowly at first, then faster. It stays
            # failed (at the peak) after the ramp until someone repairs it.
            return min(1.0, into / self.ramp_seconds) ** 2

        vibration = self.peak_vibration * progress(self.at_seconds)
        heat = self.temperature_rise * progress(self.at_seconds + self.temperature_lag_seconds)
        return vibration, heat


@dataclass(frozen=True)
class Reading:
    machine_id: str
    vibration: float
    temperature: float
    event_time: datetime

    def record(self) -> dict[str, Any]:
        return {
            "machine_id": self.machine_id,
            "vibration": self.vibration,
            "temperature": self.temperature,
            "event_time": self.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }


def telemetry(
    machines: Sequence[str] = MACHINES,
    *,
    seconds: float,
    interval_seconds: float = 5.0,
    start: datetime | None = None,
    incidents: tuple[BearingFailure, ...] = (),
    seed: int = 7,
) -> Iterator[Reading]:
    """One reading per machine every ``interval_seconds``, in event-time then machine order."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    names = sorted(machines)
    unknown = {i.machine_id for i in incidents} - set(names)
    if unknown:
        raise ValueError(f"incidents name machines not in the run: {sorted(unknown)}")
    base = {m: (rng.uniform(1.0, 2.0), rng.uniform(42.0, 55.0)) for m in names}
    # A slow drift (load, ambient temperature) plus sensor noise, both mean-reverting.
    drift = dict.fromkeys(names, 0.0)
    t = 0.0
    while t < seconds:
        for machine in names:
            vibration0, temperature0 = base[machine]
            drift[machine] = 0.98 * drift[machine] + rng.gauss(0.0, 0.015)
            vibration = vibration0 * (1.0 + drift[machine]) + rng.gauss(0.0, 0.05)
            temperature = temperature0 + 10.0 * drift[machine] + rng.gauss(0.0, 0.3)
            for failure in incidents:
                if failure.machine_id == machine:
                    more_vibration, more_heat = failure.shock(t)
                    vibration += more_vibration * (1.0 + rng.gauss(0.0, 0.05))
                    temperature += more_heat
            yield Reading(
                machine_id=machine,
                vibration=round(max(0.1, vibration), 3),
                temperature=round(temperature, 2),
                event_time=start + timedelta(seconds=t),
            )
        t += interval_seconds
