"""The ICU job in the mini-cluster: a scripted ward in, exactly the NEWS2 scores,
deterioration and missing-vitals signals and dead letters out.

Two patients, one complete set of vitals a minute. p1 deteriorates (0, 0, 5 medium, 8 high);
p2 goes on oxygen (a rise of 2 inside the low band), then its pulse and later its
temperature stop arriving. Windows: every 60 s over the last 120 s. The expected signals are
worked out by hand from the RCP chart, below each vitals set.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flink.scenario import JobScenario, expected, iso
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.integration

ICU = JobScenario("icu", "icu", "vitals_topic")

BASE = datetime(2026, 1, 1, 9, 0, 0)
NORMAL = {
    "respiration_rate": 16,
    "spo2": 97,
    "supplemental_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": 0.0,  # as monitors send it: 0 alert
    "temperature": 37.0,
}
# RR 22 (2) + pulse 115 (2) + 38.5 (1) = 5, medium
MEDIUM = {**NORMAL, "respiration_rate": 22, "pulse": 115, "temperature": 38.5}
# RR 26 (3) + SpO2 93 (2) + pulse 115 (2) + 38.5 (1) = 8, high
HIGH = {**MEDIUM, "respiration_rate": 26, "spo2": 93}
# oxygen (2) = 2, low; as monitors send it: 1 on oxygen
OXYGEN = {**NORMAL, "supplemental_oxygen": 1.0}


def vitals(patient: str, at: datetime, values: dict[str, Any]) -> list[str]:
    return [
        json.dumps(
            {"patient_id": patient, "parameter": name, "value": value, "event_time": iso(at)}
        )
        for name, value in values.items()
    ]


def minute(m: int, s: int) -> datetime:
    return BASE + timedelta(minutes=m, seconds=s)


def script() -> tuple[list[str | None], list[tuple[str, str | None]]]:
    """The raw values in order, and the dead letters expected, as (reason, payload)."""
    values: list[str | None] = []
    values += vitals("p1", minute(0, 10), NORMAL)
    values += vitals("p2", minute(0, 20), NORMAL)
    values += vitals("p1", minute(1, 10), NORMAL)
    values += vitals("p2", minute(1, 20), OXYGEN)
    values += vitals("p1", minute(2, 10), MEDIUM)
    values += vitals("p2", minute(2, 20), {k: v for k, v in OXYGEN.items() if k != "pulse"})
    gone = {"pulse", "temperature"}
    values += vitals("p2", minute(3, 20), {k: v for k, v in OXYGEN.items() if k not in gone})
    # Out of order but within the 5 s delay (the watermark is 09:03:15): on time.
    values += vitals("p1", minute(3, 17), HIGH)

    now = iso(minute(3, 18))
    bad: list[tuple[str | None, str]] = [
        ("not json", "invalid_json"),
        (None, "invalid_json"),
        (
            json.dumps({"patient_id": "p1", "parameter": "pulse", "event_time": now}),
            "missing_field:value",
        ),
        (
            json.dumps({"patient_id": "", "parameter": "pulse", "value": 80, "event_time": now}),
            "invalid_field:patient_id",
        ),
        (
            json.dumps(
                {"patient_id": "p1", "parameter": "heart_rate", "value": 80, "event_time": now}
            ),
            "invalid_field:parameter",
        ),
        (
            json.dumps({"patient_id": "p1", "parameter": "spo2", "value": 140, "event_time": now}),
            "invalid_field:value",
        ),
        (
            json.dumps(
                {"patient_id": "p1", "parameter": "pulse", "value": "fast", "event_time": now}
            ),
            "invalid_field:value",
        ),
        (
            json.dumps(
                {
                    "patient_id": "p1",
                    "parameter": "consciousness",
                    "value": "asleep",
                    "event_time": now,
                }
            ),
            "invalid_field:value",
        ),
        (
            json.dumps(
                {"patient_id": "p1", "parameter": "pulse", "value": 80, "event_time": "noon"}
            ),
            "invalid_field:event_time",
        ),
        # A pulse from 09:01:00 arriving after 09:03:20: behind the watermark, and it would
        # change p1's 09:02 window if it counted.
        (
            json.dumps(
                {
                    "patient_id": "p1",
                    "parameter": "pulse",
                    "value": 140,
                    "event_time": iso(minute(1, 0)),
                }
            ),
            "late",
        ),
        # Exactly at the watermark (09:03:20 - 5 s) is late too.
        (
            json.dumps(
                {
                    "patient_id": "p2",
                    "parameter": "pulse",
                    "value": 140,
                    "event_time": iso(minute(3, 15)),
                }
            ),
            "late",
        ),
    ]
    values += [value for value, _ in bad]
    return values, [(reason, value) for value, reason in bad]


def window(end_minute: int) -> tuple[str, str]:
    """The window's bounds as data fields hold them (JSON timestamps), and its end as the
    envelope's ``time``/``id`` hold it; the two differ in format only."""
    return minute(end_minute - 2, 0).isoformat(), minute(end_minute, 0).isoformat()


def score(
    patient: str, end: int, value: int, band: str, previous: int | None, values: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    start, stop = window(end)
    data: dict[str, Any] = {
        "window_start": start,
        "window_end": stop,
        "score": value,
        "band": band,
        "respiration_rate": float(values["respiration_rate"]),
        "spo2": float(values["spo2"]),
        "supplemental_oxygen": values["supplemental_oxygen"] == 1.0,
        "systolic_bp": float(values["systolic_bp"]),
        "pulse": float(values["pulse"]),
        "consciousness": "A",
        "temperature": float(values["temperature"]),
    }
    if previous is not None:
        data["previous_score"] = previous
    return expected("news2_score", patient, minute(end, 0), data)


def deterioration(
    patient: str,
    end: int,
    value: int,
    band: str,
    previous: int | None,
    previous_band: str | None,
    reason: str,
) -> tuple[str, dict[str, Any]]:
    start, stop = window(end)
    data: dict[str, Any] = {
        "window_start": start,
        "window_end": stop,
        "score": value,
        "band": band,
        "reason": reason,
    }
    if previous is not None:
        data |= {"previous_score": previous, "previous_band": previous_band}
    return expected("deterioration", patient, minute(end, 0), data)


def missing(patient: str, end: int, names: str) -> tuple[str, dict[str, Any]]:
    start, stop = window(end)
    data = {"window_start": start, "window_end": stop, "missing": names}
    return expected("missing_vitals", patient, minute(end, 0), data)


def expected_signals() -> dict[str, dict[str, Any]]:
    """Windows end on the minute and span two; each takes every parameter's latest value."""
    return dict(
        [
            # p1: 09:01 first score 0; 09:02 still 0 (no signal); 09:03 MEDIUM; 09:04 and
            # 09:05 HIGH (only the change at 09:04 is signalled).
            score("p1", 1, 0, "low", None, NORMAL),
            score("p1", 3, 5, "medium", 0, MEDIUM),
            score("p1", 4, 8, "high", 5, HIGH),
            deterioration("p1", 3, 5, "medium", 0, "low", "entered_medium,score_rise"),
            deterioration("p1", 4, 8, "high", 5, "medium", "entered_high,score_rise"),
            # p2: 09:01 score 0; 09:02 oxygen: 2, a rise of 2 within the low band; 09:03 the
            # 09:01:20 pulse still counts (score 2, unchanged); 09:04 no pulse for two
            # minutes; 09:05 no pulse and no temperature.
            score("p2", 1, 0, "low", None, NORMAL),
            score("p2", 2, 2, "low", 0, OXYGEN),
            deterioration("p2", 2, 2, "low", 0, "low", "score_rise"),
            missing("p2", 4, "pulse"),
            missing("p2", 5, "pulse,temperature"),
        ]
    )


def test_icu_job_scores_alerts_and_dead_letters(kafka: KafkaBroker, flink: FlinkEnv) -> None:
    values, expected_dead = script()
    outcome = ICU.run(
        kafka,
        flink,
        values,
        {
            "watermark_delay_seconds": "5",
            "window_seconds": "60",
            "missing_after_seconds": "120",
            "rise_threshold": "2",
        },
    )
    outcome.assert_dead_letters(expected_dead)
    outcome.assert_signals(expected_signals())
