"""The vitals generator: reproducible, in order, and sepsis climbs through NEWS2 risk."""

from __future__ import annotations

from datetime import datetime

import pytest
from chorus_agents.icu import news2
from chorus_agents.icu.generator import (
    NORMAL_RANGES,
    PATIENT_IDS,
    SepsisDeterioration,
    Vital,
    vitals,
)


def scores(stream: list[Vital], patient: str) -> list[tuple[datetime, int, str]]:
    """NEWS2 after each full set of a patient's observations."""
    current: dict[str, float] = {}
    out = []
    for v in stream:
        if v.patient_id != patient:
            continue
        current[v.parameter] = v.value
        if v.parameter == news2.PARAMETERS[-1]:
            out.append((v.event_time, news2.total(current), news2.risk(current)))
    return out


@pytest.mark.unit
def test_same_seed_same_stream_in_event_time_order() -> None:
    first = [v.record() for v in vitals(seconds=600)]
    assert first == [v.record() for v in vitals(seconds=600)]
    assert first != [v.record() for v in vitals(seconds=600, seed=8)]
    assert len(first) == 10 * len(PATIENT_IDS) * len(news2.PARAMETERS)
    times = [v["event_time"] for v in first]
    assert times == sorted(times)
    assert first[0] == {
        "patient_id": "pt-001",
        "parameter": "respiration_rate",
        "value": first[0]["value"],
        "event_time": "2026-01-05 00:00:00.000",
    }
    assert {v["parameter"] for v in first} == set(news2.PARAMETERS)


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_quiet_run_stays_within_normal_ranges_and_scores_zero(seed: int) -> None:
    stream = list(vitals(seconds=6 * 3600, seed=seed))
    for v in stream:
        lo, hi = NORMAL_RANGES[v.parameter]
        assert lo <= v.value <= hi, v
    for patient in PATIENT_IDS:
        assert {score for _, score, _ in scores(stream, patient)} == {0}


@pytest.mark.unit
def test_sepsis_climbs_into_medium_then_high_risk_over_tens_of_minutes() -> None:
    sepsis = SepsisDeterioration("pt-003", at_seconds=1800.0, ramp_seconds=2400.0)
    stream = list(vitals(seconds=3 * 3600, incidents=(sepsis,)))
    timeline = scores(stream, "pt-003")
    start = stream[0].event_time

    def first(level: str) -> float:
        return next((t - start).total_seconds() for t, _, r in timeline if r == level)

    assert all(score == 0 for t, score, _ in timeline if (t - start).total_seconds() < 1800)
    medium, high = first("medium"), first("high")
    assert 1800 + 600 <= medium < high <= 1800 + 2400
    late = [(score, risk) for t, score, risk in timeline if (t - start).total_seconds() >= 4200]
    assert all(risk == "high" for _, risk in late)
    assert min(score for score, _ in late) >= 10
    final = {v.parameter: v.value for v in stream if v.patient_id == "pt-003"}
    assert final["pulse"] > 110 and final["respiration_rate"] > 24
    assert final["systolic_bp"] < 100 and final["spo2"] < 92 and final["temperature"] > 38.5
    # The other patients stay stable.
    for patient in set(PATIENT_IDS) - {"pt-003"}:
        assert {score for _, score, _ in scores(stream, patient)} == {0}
    assert sepsis.incident_id == "sepsis:pt-003@1800"


@pytest.mark.unit
def test_an_incident_for_a_patient_not_in_the_run_is_an_error() -> None:
    with pytest.raises(ValueError, match="pt-404"):
        list(vitals(seconds=60, incidents=(SepsisDeterioration("pt-404", 0.0),)))
