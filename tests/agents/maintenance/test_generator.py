"""The telemetry generator: reproducible, in order, and the bearing failure is where it is."""

from __future__ import annotations

import statistics

import pytest
from chorus_agents.maintenance.generator import (
    MACHINES,
    NORMAL_TEMPERATURE,
    NORMAL_VIBRATION,
    BearingFailure,
    Reading,
    telemetry,
)


@pytest.mark.unit
def test_same_seed_same_stream_in_event_time_order() -> None:
    first = [r.record() for r in telemetry(seconds=60)]
    second = [r.record() for r in telemetry(seconds=60)]
    assert first == second
    assert len(first) == 12 * len(MACHINES)
    times = [r["event_time"] for r in first]
    assert times == sorted(times)
    assert first[0] == {
        "machine_id": "cnc-01",
        "vibration": first[0]["vibration"],
        "temperature": first[0]["temperature"],
        "event_time": "2026-01-05 06:00:00.000",
    }
    assert {r["machine_id"] for r in first} == set(MACHINES)
    assert [r.record() for r in telemetry(seconds=60, seed=8)] != first


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_quiet_run_stays_within_normal_ranges(seed: int) -> None:
    readings = list(telemetry(seconds=4 * 3600, seed=seed))
    assert all(NORMAL_VIBRATION[0] <= r.vibration <= NORMAL_VIBRATION[1] for r in readings)
    assert all(NORMAL_TEMPERATURE[0] <= r.temperature <= NORMAL_TEMPERATURE[1] for r in readings)


@pytest.mark.unit
def test_bearing_failure_raises_vibration_first_then_temperature() -> None:
    failure = BearingFailure("press-02", at_seconds=600.0, ramp_seconds=600.0)
    stream = list(telemetry(seconds=1800, incidents=(failure,)))
    start = stream[0].event_time

    def window(machine: str, lo: float, hi: float) -> list[Reading]:
        return [
            r
            for r in stream
            if r.machine_id == machine and lo <= (r.event_time - start).total_seconds() < hi
        ]

    before = window("press-02", 0, 600)
    base_vibration = statistics.mean(r.vibration for r in before)
    base_temperature = statistics.mean(r.temperature for r in before)
    # Four minutes in: vibration has clearly risen, temperature barely (it lags three).
    early = window("press-02", 840, 900)
    assert statistics.mean(r.vibration for r in early) > base_vibration + 1.0
    assert statistics.mean(r.temperature for r in early) < base_temperature + 2.0
    late = window("press-02", 1500, 1800)
    assert min(r.vibration for r in late) > NORMAL_VIBRATION[1] * 2
    assert min(r.temperature for r in late) > base_temperature + 15.0
    assert max(r.temperature for r in late) > NORMAL_TEMPERATURE[1]
    # Every other machine stays healthy.
    others = [r for r in stream if r.machine_id != "press-02"]
    assert max(r.vibration for r in others) <= NORMAL_VIBRATION[1]
    assert failure.incident_id == "bearing-failure:press-02@600"


@pytest.mark.unit
def test_an_incident_on_a_machine_not_in_the_run_is_an_error() -> None:
    with pytest.raises(ValueError, match="lathe-7"):
        list(telemetry(seconds=10, incidents=(BearingFailure("lathe-7", 0.0),)))
