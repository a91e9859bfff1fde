"""Traffic readings for the traffic domain, with an accident injected.

Every segment of :mod:`.network` reports, every ``interval_seconds``, how many vehicles
passed its detector and their average speed. Free-flowing urban traffic wanders around
each segment's own baseline (about 0.5 to 0.9 vehicles per second, 40 to 50 km/h) and
stays within :data:`NORMAL_SPEED_KMH` and :data:`NORMAL_COUNT` (per 5 s interval). An
:class:`Accident` on one segment collapses its speed and throughput at once, and the queue
spills back onto one upstream neighbour ``spillback_delay_seconds`` later, slowing it too;
after ``duration_seconds`` both recover. The Flink traffic job should see the speed drop
on two neighbouring segments and the agents retime the signals around them.

Each reading is ``{"segment_id", "vehicle_count", "avg_speed_kmh", "event_time"}`` (event
time as ``YYYY-MM-DD HH:MM:SS.fff`` in UTC), keyed by segment id: the input of the Flink
traffic job on topic ``traffic.readings``. The generator is pure (an iterator of records
in event-time order); writing them to Kafka is the caller's business.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chorus_agents.traffic.network import SEGMENTS, UPSTREAM

TOPIC = "traffic.readings"
NORMAL_SPEED_KMH = (30.0, 60.0)
NORMAL_COUNT = (0, 12)
"""Vehicles per 5 s interval on one lane group (scale with ``interval_seconds``)."""


@dataclass(frozen=True)
class Accident:
    """An injected incident: an accident on ``segment_id`` at ``at_seconds``.

    The queue spills back onto ``spillback_segment``, by default the first of the
    segment's :data:`~chorus_agents.traffic.network.UPSTREAM` neighbours.
    """

    segment_id: str
    at_seconds: float
    duration_seconds: float = 900.0
    speed_factor: float = 0.15
    count_factor: float = 0.35
    spillback_segment: str | None = None
    spillback_delay_seconds: float = 60.0
    spillback_speed_factor: float = 0.35

    def __post_init__(self) -> None:
        if self.segment_id not in SEGMENTS:
            raise ValueError(f"accident on unknown segment {self.segment_id!r}")
        upstream = UPSTREAM[self.segment_id]
        if self.spillback_segment is None and not upstream:
            raise ValueError(f"segment {self.segment_id} has no upstream segment to spill onto")
        if self.spillback_segment is not None and self.spillback_segment not in upstream:
            raise ValueError(
                f"{self.spillback_segment!r} is not upstream of {self.segment_id} ({upstream})"
            )

    @property
    def incident_id(self) -> str:
        return f"accident:{self.segment_id}@{self.at_seconds:g}"

    @property
    def queue_segment(self) -> str:
        return self.spillback_segment or UPSTREAM[self.segment_id][0]

    def shock(self, segment_id: str, t: float) -> tuple[float, float]:
        """The count factor and speed factor on ``segment_id`` at ``t`` seconds in."""
        end = self.at_seconds + self.duration_seconds
        if segment_id == self.segment_id and self.at_seconds <= t < end:
            return self.count_factor, self.speed_factor
        if (
            segment_id == self.queue_segment
            and self.at_seconds + self.spillback_delay_seconds <= t < end
        ):
            return (1.0 + self.count_factor) / 2, self.spillback_speed_factor
        return 1.0, 1.0


@dataclass(frozen=True)
class Reading:
    segment_id: str
    vehicle_count: int
    avg_speed_kmh: float
    event_time: datetime

    def record(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "vehicle_count": self.vehicle_count,
            "avg_speed_kmh": self.avg_speed_kmh,
            "event_time": self.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of one detector interval.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def readings(
    segments: Sequence[str] = tuple(SEGMENTS),
    *,
    seconds: float,
    interval_seconds: float = 5.0,
    start: datetime | None = None,
    incidents: tuple[Accident, ...] = (),
    seed: int = 7,
) -> Iterator[Reading]:
    """One reading per segment every ``interval_seconds``, in event-time then segment order."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    names = sorted(segments)
    unknown = {s for i in incidents for s in (i.segment_id, i.queue_segment)} - set(names)
    if unknown:
        raise ValueError(f"incidents name segments not in the run: {sorted(unknown)}")
    base = {s: (rng.uniform(0.5, 0.9), rng.uniform(40.0, 50.0)) for s in names}
    t = 0.0
    while t < seconds:
        for segment in names:
            rate, speed = base[segment]
            count_factor, speed_factor = 1.0, 1.0
            for accident in incidents:
                c, v = accident.shock(segment, t)
                count_factor, speed_factor = count_factor * c, speed_factor * v
            count = _poisson(rng, rate * interval_seconds * count_factor)
            # Cap at what the lanes can carry (about 2 vehicles per second).
            count = min(count, int(2.0 * interval_seconds))
            observed = speed * speed_factor + rng.gauss(0.0, 2.0 * speed_factor)
            yield Reading(
                segment_id=segment,
                vehicle_count=count,
                avg_speed_kmh=round(max(1.0, observed), 1),
                event_time=start + timedelta(seconds=t),
            )
        t += interval_seconds
