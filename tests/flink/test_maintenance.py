"""The predictive-maintenance job in the mini-cluster: scripted telemetry (with malformed and
late readings) in; exactly the anomaly and maintenance-alert signals and dead letters out,
checked against the z-scores computed independently in Python."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flink.scenario import JobScenario, expected, iso, watermarks_before
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.integration

BASE = datetime(2026, 1, 1, 9, 0, 0)
DELAY = timedelta(seconds=5)
HISTORY, MIN_HISTORY, Z, MIN_STDDEV, RUN = 10, 4, 3.0, 0.001, 3

Reading = tuple[str, float, float, datetime]

MAINTENANCE = JobScenario("maintenance", "maintenance", "telemetry_topic")


def script(seed: int = 5) -> tuple[list[str | None], dict[int, str]]:
    """Two machines, a reading a second each; press-1 jumps for three readings in a row
    (an alert), press-2 has a single outlier (an anomaly, no alert)."""
    rng = random.Random(seed)
    values: list[str | None] = []
    reasons: dict[int, str] = {}
    for i in range(60):
        for m, machine in enumerate(("press-1", "press-2")):
            at = BASE + timedelta(seconds=i, milliseconds=100 * m + rng.randint(0, 50))
            vibration = 1.0 + rng.uniform(-0.05, 0.05)
            temperature = 60.0 + rng.uniform(-0.5, 0.5)
            if machine == "press-1" and 30 <= i < 33:
                vibration = 4.0 + 3.0 * (i - 30)  # a failing bearing: each reading worse
            if machine == "press-2" and i == 40:
                temperature = 90.0
            values.append(
                json.dumps(
                    {
                        "machine_id": machine,
                        "vibration": round(vibration, 4),
                        "temperature": round(temperature, 3),
                        "event_time": iso(at),
                    }
                )
            )
        if i in (20, 50):
            reasons[len(values)] = "late"
            late = BASE + timedelta(seconds=i - 20)
            values.append(
                json.dumps(
                    {
                        "machine_id": "press-2",
                        "vibration": 1,
                        "temperature": 60,
                        "event_time": iso(late),
                    }
                )
            )
    old = iso(BASE)
    for value, reason in [
        ("{", "invalid_json"),
        (
            json.dumps({"vibration": 1, "temperature": 60, "event_time": old}),
            "missing_field:machine_id",
        ),
        (
            json.dumps(
                {"machine_id": "press-1", "vibration": "high", "temperature": 60, "event_time": old}
            ),
            "invalid_field:vibration",
        ),
        (
            json.dumps({"machine_id": "press-1", "vibration": 1, "event_time": old}),
            "missing_field:temperature",
        ),
    ]:
        reasons[len(values)] = reason
        values.append(value)
    return values, reasons


def accepted(values: list[str | None], reasons: dict[int, str]) -> list[Reading]:
    found = []
    for i, (value, watermark) in enumerate(
        zip(values, watermarks_before(values, DELAY), strict=True)
    ):
        if i in reasons:
            continue
        record = json.loads(value or "")
        at = datetime.fromisoformat(record["event_time"][:-1])
        assert watermark is None or at > watermark
        found.append((record["machine_id"], record["vibration"], record["temperature"], at))
    return found


def stats(history: list[float], value: float) -> tuple[float, float, float]:
    mean = sum(history) / len(history)
    stddev = max(math.sqrt(sum((x - mean) ** 2 for x in history) / len(history)), MIN_STDDEV)
    return mean, stddev, (value - mean) / stddev


def expected_signals(readings: list[Reading]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    by_machine: dict[str, list[Reading]] = defaultdict(list)
    for reading in sorted(readings, key=lambda r: r[3]):
        by_machine[reading[0]].append(reading)
    for machine, series in by_machine.items():
        run: list[tuple[datetime, float]] = []
        for n, (_, vibration, temperature, at) in enumerate(series):
            history = series[max(0, n - HISTORY) : n]
            anomalous = False
            if history:
                v_mean, v_std, v_z = stats([r[1] for r in history], vibration)
                t_mean, t_std, t_z = stats([r[2] for r in history], temperature)
                score = max(abs(v_z), abs(t_z))
                assert abs(score - Z) > 1e-6, "a score on the threshold makes the script ambiguous"
                anomalous = len(history) >= MIN_HISTORY and score > Z
            if anomalous:
                anomaly = {
                    "score": score,
                    "readings": len(history),
                    "vibration": vibration,
                    "vibration_mean": v_mean,
                    "vibration_stddev": v_std,
                    "vibration_z": v_z,
                    "temperature": temperature,
                    "temperature_mean": t_mean,
                    "temperature_stddev": t_std,
                    "temperature_z": t_z,
                }
                found.update([expected("anomaly", machine, at, anomaly)])
                run.append((at, score))
                if len(run) == RUN:
                    alert = {
                        "first_time": run[0][0].isoformat(timespec="milliseconds"),
                        "last_time": at.isoformat(timespec="milliseconds"),
                        "max_score": max(s for _, s in run),
                        "anomalies": RUN,
                    }
                    found.update([expected("maintenance_alert", machine, at, alert)])
                    run = []
            else:
                run = []
    return found


def test_maintenance_job_scores_readings_and_raises_alerts(
    kafka: KafkaBroker, flink: FlinkEnv
) -> None:
    values, reasons = script()
    wanted = expected_signals(accepted(values, reasons))
    kinds = [s["kind"] for s in wanted.values()]
    assert kinds.count("maintenance_alert") == 1 and kinds.count("anomaly") > RUN

    outcome = MAINTENANCE.run(
        kafka,
        flink,
        values,
        {
            "history_readings": str(HISTORY),
            "min_history": str(MIN_HISTORY),
            "z_threshold": str(Z),
            "min_stddev": str(MIN_STDDEV),
            "consecutive_anomalies": str(RUN),
        },
        options={"execution.checkpointing.interval": "1 s"},
        timeout=300,
    )

    for signal in outcome.signals:
        if signal["kind"] == "maintenance_alert":  # timestamps: compare as instants
            for key in ("first_time", "last_time"):
                signal["data"][key] = datetime.fromisoformat(signal["data"][key]).isoformat(
                    timespec="milliseconds"
                )
    outcome.assert_signals(wanted)
    outcome.assert_dead_letters(
        [(reason, values[i]) for i, reason in sorted(reasons.items())], in_order=True
    )
