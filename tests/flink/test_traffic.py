"""The traffic job in the mini-cluster: scripted loop-detector readings in, exactly the
congestion and incident signals and dead letters out, checked against a computation in
Python.

Four segments in a line (s1 - s2 - s3 - s4), one reading each every 15 s, 1-minute windows:
minute 0 flows freely; minute 1 jams s1 and s2 (an incident) while s4 is slow but nearly
empty; minute 2 jams s3 alone, and s2's mean speed sits exactly on the threshold; minute 3
jams s2, s3 and s4 (two incidents) while s1 reports nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flink.scenario import JobScenario, expected, iso
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker

BASE = datetime(2026, 1, 1, 9, 0, 0)
WINDOW = timedelta(seconds=60)
FREE_FLOW, RATIO, MIN_VEHICLES = 50.0, 0.5, 10
NEIGHBOURS = {"s1": ["s2"], "s2": ["s3"], "s4": ["s3"]}
PAIRS = [("s1", "s2"), ("s2", "s3"), ("s3", "s4")]
TRAFFIC = JobScenario("traffic", "traffic", "readings_topic")

# minute -> segment -> four (vehicle_count, avg_speed_kmh) readings, 15 s apart
FREE = [(5, 45.0)] * 4
JAM = [(4, 15.0), (4, 12.0), (4, 18.0), (4, 10.0)]
PLAN: dict[int, dict[str, list[tuple[int, float]]]] = {
    0: {"s1": FREE, "s2": FREE, "s3": FREE, "s4": FREE},
    1: {
        "s1": JAM,
        "s2": JAM,
        "s3": [(5, 45.0), (0, 0.0), (5, 40.0), (5, 50.0)],
        "s4": [(2, 10.0)] * 4,
    },  # slow, but 8 vehicles: not congestion
    2: {
        "s1": FREE,
        "s2": [(5, 20.0), (5, 30.0), (5, 25.0), (5, 25.0)],  # mean exactly 25
        "s3": JAM,
        "s4": FREE,
    },
    3: {"s2": JAM, "s3": JAM, "s4": JAM},
}

Reading = tuple[str, int, float, datetime]


def readings() -> list[Reading]:
    found = []
    for m, segments in PLAN.items():
        for k in range(4):
            for i, (segment, plan) in enumerate(sorted(segments.items())):
                count, speed = plan[k]
                found.append(
                    (segment, count, speed, BASE + m * WINDOW + timedelta(seconds=15 * k + i))
                )
    return sorted(found, key=lambda r: r[3])


def script() -> tuple[list[str | None], list[tuple[str, str | None]]]:
    """The raw values in order, and the dead letters expected, as (reason, payload)."""
    values: list[str | None] = [
        json.dumps({"segment_id": s, "vehicle_count": c, "avg_speed_kmh": v, "event_time": iso(at)})
        for s, c, v, at in readings()
    ]
    now = iso(BASE + timedelta(minutes=3, seconds=50))
    bad: list[tuple[str | None, str]] = [
        ("{not json", "invalid_json"),
        (
            json.dumps({"vehicle_count": 3, "avg_speed_kmh": 20, "event_time": now}),
            "missing_field:segment_id",
        ),
        (
            json.dumps(
                {"segment_id": "s1", "vehicle_count": -1, "avg_speed_kmh": 20, "event_time": now}
            ),
            "invalid_field:vehicle_count",
        ),
        (
            json.dumps(
                {
                    "segment_id": "s1",
                    "vehicle_count": "many",
                    "avg_speed_kmh": 20,
                    "event_time": now,
                }
            ),
            "invalid_field:vehicle_count",
        ),
        (
            json.dumps(
                {"segment_id": "s1", "vehicle_count": 3, "avg_speed_kmh": 400, "event_time": now}
            ),
            "invalid_field:avg_speed_kmh",
        ),
        (
            json.dumps({"segment_id": "s1", "vehicle_count": 3, "avg_speed_kmh": 20}),
            "missing_field:event_time",
        ),
        # A jam report for s4 in minute 0, arriving at the end: it would make s3+s4 an
        # incident in minute 0 if it counted.
        (
            json.dumps(
                {
                    "segment_id": "s4",
                    "vehicle_count": 50,
                    "avg_speed_kmh": 5,
                    "event_time": iso(BASE + timedelta(seconds=30)),
                }
            ),
            "late",
        ),
    ]
    values += [value for value, _ in bad]
    return values, [(reason, value) for value, reason in bad]


def expected_signals() -> dict[str, dict[str, Any]]:
    """Congestion and incidents computed from the readings, without Flink."""
    windows: dict[tuple[str, datetime], list[tuple[int, float]]] = defaultdict(list)
    for segment, count, speed, at in readings():
        windows[(segment, BASE + ((at - BASE) // WINDOW) * WINDOW)].append((count, speed))
    congested: dict[tuple[str, datetime], tuple[int, float]] = {}
    for key, found in windows.items():
        vehicles = sum(c for c, _ in found)
        if vehicles and vehicles >= MIN_VEHICLES:
            mean = sum(c * v for c, v in found) / vehicles
            if mean < RATIO * FREE_FLOW:
                congested[key] = (vehicles, mean)
    wanted: dict[str, dict[str, Any]] = {}
    for (segment, start), (vehicles, mean) in congested.items():
        end = start + WINDOW
        congestion = {
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "segment_id": segment,
            "vehicles": vehicles,
            "flow_per_hour": vehicles * 3600 / 60,
            "mean_speed_kmh": mean,
            "speed_ratio": mean / FREE_FLOW,
        }
        wanted.update([expected("congestion", segment, end, congestion)])
    for a, b in PAIRS:
        for (segment, start), (vehicles, mean) in congested.items():
            other = congested.get((b, start))
            if segment != a or other is None:
                continue
            end = start + WINDOW
            incident = {
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "vehicles": vehicles + other[0],
                "segments": [a, b],
                "mean_speeds_kmh": [mean, other[1]],
            }
            wanted.update([expected("incident", f"{a}+{b}", end, incident)])
    return wanted


@pytest.mark.unit
def test_the_scripted_plan_covers_every_case() -> None:
    """The script is what the docstring says: 6 congestions, incidents s1+s2, s2+s3, s3+s4."""
    kinds = sorted(f"{s['kind']}:{s['subject']}" for s in expected_signals().values())
    assert kinds == [
        "congestion:s1",
        "congestion:s2",
        "congestion:s2",
        "congestion:s3",
        "congestion:s3",
        "congestion:s4",
        "incident:s1+s2",
        "incident:s2+s3",
        "incident:s3+s4",
    ]


@pytest.mark.integration
def test_traffic_job_congestion_incidents_and_dead_letters(
    kafka: KafkaBroker, flink: FlinkEnv
) -> None:
    values, expected_dead = script()
    outcome = TRAFFIC.run(
        kafka,
        flink,
        values,
        {
            "watermark_delay_seconds": "5",
            "window_seconds": "60",
            "free_flow_kmh": str(FREE_FLOW),
            "speed_ratio": str(RATIO),
            "min_vehicles": str(MIN_VEHICLES),
            "neighbours": json.dumps(NEIGHBOURS),
        },
    )
    outcome.assert_dead_letters(expected_dead)
    outcome.assert_signals(expected_signals())
