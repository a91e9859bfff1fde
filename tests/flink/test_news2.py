"""NEWS2 against the Royal College of Physicians' chart: every band at its boundaries."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

# flink/ has its own environment; its pure modules import nothing from it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
news2: Any = importlib.import_module("chorus_flink.scoring.news2")


@pytest.mark.parametrize(
    ("rate", "score"),
    [
        (0, 3),
        (8, 3),
        (8.5, 1),
        (9, 1),
        (11, 1),
        (12, 0),
        (20, 0),
        (21, 2),
        (24, 2),
        (25, 3),
        (60, 3),
    ],
)
def test_respiration_rate(rate: float, score: int) -> None:
    assert news2.respiration_rate_score(rate) == score


@pytest.mark.parametrize(
    ("spo2", "score"), [(70, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
)
def test_spo2_scale_1(spo2: float, score: int) -> None:
    assert news2.spo2_scale1_score(spo2) == score


def test_air_or_oxygen() -> None:
    assert news2.oxygen_score(True) == 2
    assert news2.oxygen_score(False) == 0


@pytest.mark.parametrize(
    ("sbp", "score"),
    [(60, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_systolic_bp(sbp: float, score: int) -> None:
    assert news2.systolic_bp_score(sbp) == score


@pytest.mark.parametrize(
    ("pulse", "score"),
    [
        (30, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (180, 3),
    ],
)
def test_pulse(pulse: float, score: int) -> None:
    assert news2.pulse_score(pulse) == score


@pytest.mark.parametrize(
    ("avpu", "score"),
    [
        ("A", 0),
        ("a", 0),
        ("C", 3),
        ("V", 3),
        ("P", 3),
        ("U", 3),
        ("0", 0),
        ("0.0", 0),
        ("1", 3),
        ("1.0", 3),
    ],
)
def test_consciousness(avpu: str, score: int) -> None:
    assert news2.consciousness_score(avpu) == score


def test_consciousness_rejects_other_levels() -> None:
    with pytest.raises(ValueError, match="expected one of A, C, V, P, U"):
        news2.consciousness_score("X")
    with pytest.raises(ValueError, match="expected one of"):
        news2.consciousness_score("2")


@pytest.mark.parametrize(
    ("celsius", "score"),
    [
        (34.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (41.0, 2),
    ],
)
def test_temperature(celsius: float, score: int) -> None:
    assert news2.temperature_score(celsius) == score


def observation(**changes: Any) -> Any:
    normal = {
        "respiration_rate": 16,
        "spo2": 97,
        "supplemental_oxygen": False,
        "systolic_bp": 120,
        "pulse": 70,
        "consciousness": "A",
        "temperature": 37.0,
    }
    return news2.Observation(**{**normal, **changes})


def test_aggregate_is_the_sum_of_the_parameter_scores() -> None:
    assert observation().score() == 0
    # RR 22 (2) + SpO2 94 (1) + oxygen (2) + SBP 105 (1) + pulse 115 (2) + A (0) + 38.5 (1)
    sick = observation(
        respiration_rate=22,
        spo2=94,
        supplemental_oxygen=True,
        systolic_bp=105,
        pulse=115,
        temperature=38.5,
    )
    assert sick.scores() == {
        "respiration_rate": 2,
        "spo2": 1,
        "supplemental_oxygen": 2,
        "systolic_bp": 1,
        "pulse": 2,
        "consciousness": 0,
        "temperature": 1,
    }
    assert sick.score() == 9
    worst = observation(
        respiration_rate=30,
        spo2=85,
        supplemental_oxygen=True,
        systolic_bp=80,
        pulse=140,
        consciousness="U",
        temperature=34.0,
    )
    assert worst.score() == 20


@pytest.mark.parametrize(
    ("scores", "band"),
    [
        ([0, 0, 0, 0, 0, 0, 0], "low"),
        ([1, 1, 1, 1, 0, 0, 0], "low"),  # 4
        ([3, 0, 0, 0, 0, 0, 0], "low-medium"),  # a red score
        ([3, 1, 0, 0, 0, 0, 0], "low-medium"),  # 4 with a red score
        ([2, 2, 1, 0, 0, 0, 0], "medium"),  # 5
        ([3, 2, 0, 0, 0, 0, 0], "medium"),  # 5 with a red score: the aggregate wins
        ([2, 2, 2, 0, 0, 0, 0], "medium"),  # 6
        ([2, 2, 2, 1, 0, 0, 0], "high"),  # 7
        ([3, 3, 3, 3, 3, 3, 2], "high"),  # 20
    ],
)
def test_risk_bands(scores: list[int], band: str) -> None:
    assert news2.risk_band(scores) == band


def test_band_order() -> None:
    ranks = [news2.RiskBand(b).rank for b in ("low", "low-medium", "medium", "high")]
    assert ranks == [0, 1, 2, 3]


def test_observation_band() -> None:
    assert observation(consciousness="V").band() == "low-medium"
    assert observation(pulse=135, temperature=39.5, supplemental_oxygen=True).band() == "high"


@pytest.mark.parametrize(
    ("parameter", "text", "value"),
    [
        ("respiration_rate", "18", 18.0),
        ("spo2", " 95.5 ", 95.5),
        ("supplemental_oxygen", "true", True),
        ("supplemental_oxygen", "0", False),
        ("supplemental_oxygen", "AIR", False),
        ("consciousness", "v", "V"),
        ("consciousness", "1.0", "CVPU"),
        ("consciousness", "0", "A"),
        ("supplemental_oxygen", "1.0", True),
        ("temperature", "36.6", 36.6),
    ],
)
def test_parse(parameter: str, text: str, value: object) -> None:
    assert news2.parse(parameter, text) == value


@pytest.mark.parametrize(
    ("parameter", "text", "problem"),
    [
        ("heart_rate", "80", "unknown parameter 'heart_rate'"),
        ("pulse", "fast", "not a number"),
        ("spo2", "101", "outside 50..100"),
        ("temperature", "98.6", "outside 25..45"),
        ("supplemental_oxygen", "maybe", "expected true or false"),
        ("consciousness", "awake", "expected one of"),
    ],
)
def test_parse_rejects(parameter: str, text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        news2.parse(parameter, text)


def test_observation_from_strings() -> None:
    values = {
        "respiration_rate": "25",
        "spo2": "91",
        "supplemental_oxygen": "false",
        "systolic_bp": "90",
        "pulse": "131",
        "consciousness": "P",
        "temperature": "39.1",
    }
    complete = news2.observation(values)
    assert complete is not None
    assert complete.score() == 3 + 3 + 0 + 3 + 3 + 3 + 2
    assert news2.observation({**values, "pulse": None}) is None
    assert news2.observation({k: v for k, v in values.items() if k != "spo2"}) is None
