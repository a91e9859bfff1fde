"""NEWS2 scoring: the published bands, the aggregate and the risk."""

from __future__ import annotations

import pytest
from chorus_agents.icu.news2 import risk, score, total

CALM = {
    "respiration_rate": 16,
    "spo2": 97,
    "supplemental_oxygen": 0,
    "systolic_bp": 125,
    "pulse": 72,
    "consciousness": 0,
    "temperature": 36.8,
}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("parameter", "points"),
    [
        (
            "respiration_rate",
            [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)],
        ),
        ("spo2", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)]),
        ("systolic_bp", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (220, 3)]),
        ("pulse", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (111, 2), (131, 3)]),
        (
            "temperature",
            [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.1, 2)],
        ),
        ("consciousness", [(0, 0), (1, 3)]),
        ("supplemental_oxygen", [(0, 0), (1, 2)]),
    ],
)
def test_bands(parameter: str, points: list[tuple[float, int]]) -> None:
    assert [score(parameter, value) for value, _ in points] == [p for _, p in points]


@pytest.mark.unit
def test_aggregate_and_risk() -> None:
    assert (total(CALM), risk(CALM)) == (0, "low")
    assert risk({**CALM, "consciousness": 1}) == "low-medium"
    assert risk({**CALM, "respiration_rate": 22, "pulse": 115, "spo2": 95}) == "medium"
    assert risk({**CALM, "respiration_rate": 26, "pulse": 115, "systolic_bp": 95}) == "high"
    with pytest.raises(ValueError, match="missing"):
        total({"pulse": 80})
    with pytest.raises(ValueError, match="glucose"):
        score("glucose", 5)
