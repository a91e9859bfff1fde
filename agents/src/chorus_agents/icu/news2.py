"""NEWS2 (the Royal College of Physicians' National Early Warning Score 2), SpO2 scale 1.

Pure scoring, used by the vitals generator's tests and by agents that explain a score.
Each parameter scores 0 to 3; the risk is ``high`` at 7 or more, ``medium`` at 5 or 6,
``low-medium`` when a single parameter scores 3, ``low`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

PARAMETERS = (
    "respiration_rate",
    "spo2",
    "supplemental_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
)


def score(parameter: str, value: float) -> int:
    """The NEWS2 points of one observation (consciousness: 0 alert, 1 new confusion/VPU)."""
    if parameter == "respiration_rate":
        return (
            3 if value <= 8 else 1 if value <= 11 else 0 if value <= 20 else 2 if value <= 24 else 3
        )
    if parameter == "spo2":
        return 3 if value <= 91 else 2 if value <= 93 else 1 if value <= 95 else 0
    if parameter == "supplemental_oxygen":
        return 2 if value >= 1 else 0
    if parameter == "systolic_bp":
        return (
            3
            if value <= 90
            else 2
            if value <= 100
            else 1
            if value <= 110
            else 0
            if value <= 219
            else 3
        )
    if parameter == "pulse":
        return (
            3
            if value <= 40
            else 1
            if value <= 50
            else 0
            if value <= 90
            else 1
            if value <= 110
            else 2
            if value <= 130
            else 3
        )
    if parameter == "consciousness":
        return 3 if value >= 1 else 0
    if parameter == "temperature":
        return (
            3
            if value <= 35.0
            else 1
            if value <= 36.0
            else 0
            if value <= 38.0
            else 1
            if value <= 39.0
            else 2
        )
    raise ValueError(f"{parameter!r} is not a NEWS2 parameter ({', '.join(PARAMETERS)})")


def total(observations: Mapping[str, float]) -> int:
    """The aggregate score of a full set of observations (every parameter present)."""
    missing = set(PARAMETERS) - set(observations)
    if missing:
        raise ValueError(f"NEWS2 needs every parameter; missing {sorted(missing)}")
    return sum(score(p, observations[p]) for p in PARAMETERS)


def risk(observations: Mapping[str, float]) -> str:
    """``low``, ``low-medium``, ``medium`` or ``high``."""
    aggregate = total(observations)
    if aggregate >= 7:
        return "high"
    if aggregate >= 5:
        return "medium"
    if any(score(p, observations[p]) == 3 for p in PARAMETERS):
        return "low-medium"
    return "low"
