"""The traffic generator: reproducible, in order, and the accident is where it is."""

from __future__ import annotations

import statistics

import pytest
from chorus_agents.traffic.generator import (
    NORMAL_COUNT,
    NORMAL_SPEED_KMH,
    Accident,
    Reading,
    readings,
)
from chorus_agents.traffic.network import NEIGHBOURS, SEGMENTS


@pytest.mark.unit
def test_same_seed_same_stream_in_event_time_order() -> None:
    first = [r.record() for r in readings(seconds=60)]
    assert first == [r.record() for r in readings(seconds=60)]
    assert first != [r.record() for r in readings(seconds=60, seed=8)]
    assert len(first) == 12 * len(SEGMENTS)
    times = [r["event_time"] for r in first]
    assert times == sorted(times)
    assert first[0]["event_time"] == "2026-01-05 08:00:00.000"
    assert {r["segment_id"] for r in first} == set(SEGMENTS)


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_quiet_run_stays_within_normal_ranges(seed: int) -> None:
    stream = list(readings(seconds=3 * 3600, seed=seed))
    assert all(NORMAL_SPEED_KMH[0] <= r.avg_speed_kmh <= NORMAL_SPEED_KMH[1] for r in stream)
    assert all(NORMAL_COUNT[0] <= r.vehicle_count <= NORMAL_COUNT[1] for r in stream)


@pytest.mark.unit
def test_accident_slows_its_segment_and_an_upstream_neighbour_and_drops_counts() -> None:
    accident = Accident("A2-A3", at_seconds=600.0, duration_seconds=600.0)
    assert accident.queue_segment == "A1-A2" and "A1-A2" in NEIGHBOURS["A2-A3"]
    stream = list(readings(seconds=1800, incidents=(accident,)))
    start = stream[0].event_time

    def window(segment: str, lo: float, hi: float) -> list[Reading]:
        return [
            r
            for r in stream
            if r.segment_id == segment and lo <= (r.event_time - start).total_seconds() < hi
        ]

    for segment, speed_below in (("A2-A3", 12.0), ("A1-A2", 25.0)):
        before, during = window(segment, 0, 600), window(segment, 700, 1200)
        assert max(r.avg_speed_kmh for r in during) < speed_below
        assert statistics.mean(r.vehicle_count for r in during) < 0.8 * statistics.mean(
            r.vehicle_count for r in before
        )
        after = window(segment, 1200, 1800)
        assert min(r.avg_speed_kmh for r in after) >= NORMAL_SPEED_KMH[0]
    # The queue reaches upstream a minute later, and the rest of the grid flows.
    assert min(r.avg_speed_kmh for r in window("A1-A2", 600, 660)) >= NORMAL_SPEED_KMH[0]
    others = [r for r in stream if r.segment_id not in ("A2-A3", "A1-A2")]
    assert min(r.avg_speed_kmh for r in others) >= NORMAL_SPEED_KMH[0]
    assert accident.incident_id == "accident:A2-A3@600"


@pytest.mark.unit
def test_an_accident_needs_a_known_segment_with_an_upstream_one() -> None:
    with pytest.raises(ValueError, match="unknown segment"):
        Accident("Z1-Z2", 0.0)
    with pytest.raises(ValueError, match="no upstream"):
        Accident("A1-A2", 0.0)
    with pytest.raises(ValueError, match="not upstream"):
        Accident("B2-B3", 0.0, spillback_segment="A1-A2")
    assert Accident("B2-B3", 0.0, spillback_segment="B1-B2").queue_segment == "B1-B2"
