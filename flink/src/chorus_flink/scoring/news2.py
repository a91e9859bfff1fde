"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017).

Seven parameters each score 0 to 3 on the RCP chart (SpO2 on scale 1); their sum is the
aggregate score, and the aggregate (plus a 3 in any single parameter) gives the clinical risk
band. The chart lists whole numbers (temperature to one decimal); a value that falls between
two rows (a respiration rate of 20.5) scores in the first row whose upper bound it does not
exceed, i.e. the row above: the chart's rows are read as ``value <= upper bound``.

Values arrive as strings from Kafka (``"92"``, ``"A"``, ``"true"``): :func:`parse` turns one
into its typed value or raises ``ValueError`` naming the problem; :data:`PARAMETERS` lists
the plausible range of each numeric parameter, outside which a reading is an error, not a
patient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class RiskBand(StrEnum):
    """The RCP clinical risk bands, in increasing order of urgency."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(RiskBand).index(self)


RESPIRATION_RATE: Final = "respiration_rate"
SPO2: Final = "spo2"
SUPPLEMENTAL_OXYGEN: Final = "supplemental_oxygen"
SYSTOLIC_BP: Final = "systolic_bp"
PULSE: Final = "pulse"
CONSCIOUSNESS: Final = "consciousness"
TEMPERATURE: Final = "temperature"

PARAMETERS: Final[Mapping[str, tuple[float, float] | None]] = {
    RESPIRATION_RATE: (0.0, 80.0),
    SPO2: (50.0, 100.0),
    SUPPLEMENTAL_OXYGEN: None,
    SYSTOLIC_BP: (30.0, 300.0),
    PULSE: (10.0, 300.0),
    CONSCIOUSNESS: None,
    TEMPERATURE: (25.0, 45.0),
}
"""Every parameter NEWS2 needs, in chart order, with the plausible range of numeric ones."""

AVPU_ALERT: Final = "A"
AVPU_CVPU: Final = frozenset({"C", "V", "P", "U"})
"""New confusion, voice, pain, unresponsive: each scores 3."""
AVPU_NUMERIC: Final[Mapping[str, str]] = {"0": "A", "0.0": "A", "1": "CVPU", "1.0": "CVPU"}
"""Monitors (and Chorus' vitals generator) send 0 for alert and 1 for any of C, V, P, U."""

OXYGEN_TRUE: Final = frozenset({"true", "1", "1.0", "o2", "oxygen"})
OXYGEN_FALSE: Final = frozenset({"false", "0", "0.0", "air"})

# (upper bound inclusive, score), in increasing order; above the last bound: `above`.
_Rows = tuple[tuple[float, int], ...]
_RESPIRATION: Final[_Rows] = ((8, 3), (11, 1), (20, 0), (24, 2))
_SPO2_SCALE_1: Final[_Rows] = ((91, 3), (93, 2), (95, 1))
_SYSTOLIC: Final[_Rows] = ((90, 3), (100, 2), (110, 1), (219, 0))
_PULSE: Final[_Rows] = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2))
_TEMPERATURE: Final[_Rows] = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1))


def _chart(value: float, rows: _Rows, above: int) -> int:
    for upper, score in rows:
        if value <= upper:
            return score
    return above


def respiration_rate_score(breaths_per_minute: float) -> int:
    """<=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3."""
    return _chart(breaths_per_minute, _RESPIRATION, 3)


def spo2_scale1_score(percent: float) -> int:
    """<=91: 3, 92-93: 2, 94-95: 1, >=96: 0 (scale 1: no hypercapnic respiratory failure)."""
    return _chart(percent, _SPO2_SCALE_1, 0)


def oxygen_score(on_oxygen: bool) -> int:
    """Supplemental oxygen: 2; air: 0."""
    return 2 if on_oxygen else 0


def systolic_bp_score(mmhg: float) -> int:
    """<=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3."""
    return _chart(mmhg, _SYSTOLIC, 3)


def pulse_score(beats_per_minute: float) -> int:
    """<=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3."""
    return _chart(beats_per_minute, _PULSE, 3)


def consciousness_level(avpu: str) -> str:
    """The AVPU level: ``A``, ``C``, ``V``, ``P``, ``U``, or ``CVPU`` for a numeric 1."""
    level = avpu.strip().upper()
    level = AVPU_NUMERIC.get(level, level)
    if level == AVPU_ALERT or level in AVPU_CVPU or level == "CVPU":
        return level
    raise ValueError(f"consciousness {avpu!r}: expected one of A, C, V, P, U (or 0, 1)")


def consciousness_score(avpu: str) -> int:
    """Alert (A, 0): 0; new confusion, voice, pain or unresponsive (C, V, P, U, 1): 3."""
    return 0 if consciousness_level(avpu) == AVPU_ALERT else 3


def temperature_score(celsius: float) -> int:
    """<=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2."""
    return _chart(celsius, _TEMPERATURE, 2)


@dataclass(frozen=True)
class Observation:
    """One complete set of vital signs, as NEWS2 needs it."""

    respiration_rate: float
    spo2: float
    supplemental_oxygen: bool
    systolic_bp: float
    pulse: float
    consciousness: str
    temperature: float

    def scores(self) -> dict[str, int]:
        """Each parameter's score, by parameter name, in chart order."""
        return {
            RESPIRATION_RATE: respiration_rate_score(self.respiration_rate),
            SPO2: spo2_scale1_score(self.spo2),
            SUPPLEMENTAL_OXYGEN: oxygen_score(self.supplemental_oxygen),
            SYSTOLIC_BP: systolic_bp_score(self.systolic_bp),
            PULSE: pulse_score(self.pulse),
            CONSCIOUSNESS: consciousness_score(self.consciousness),
            TEMPERATURE: temperature_score(self.temperature),
        }

    def score(self) -> int:
        """The aggregate NEWS2 score, 0 to 20."""
        return sum(self.scores().values())

    def band(self) -> RiskBand:
        return risk_band(self.scores().values())


def risk_band(parameter_scores: Iterable[int]) -> RiskBand:
    """The clinical risk band of the seven parameter scores.

    Aggregate >= 7: high; 5-6: medium; 0-4: low, unless a single parameter scores 3
    (low-medium, "a red score").
    """
    scores = list(parameter_scores)
    total = sum(scores)
    if total >= 7:
        return RiskBand.HIGH
    if total >= 5:
        return RiskBand.MEDIUM
    if 3 in scores:
        return RiskBand.LOW_MEDIUM
    return RiskBand.LOW


def parse(parameter: str, text: str) -> float | bool | str:
    """The typed value of ``parameter`` given as ``text``; ``ValueError`` says what is wrong."""
    if parameter not in PARAMETERS:
        raise ValueError(f"unknown parameter {parameter!r}")
    raw = text.strip()
    if parameter == CONSCIOUSNESS:
        return consciousness_level(raw)
    if parameter == SUPPLEMENTAL_OXYGEN:
        lowered = raw.lower()
        if lowered in OXYGEN_TRUE:
            return True
        if lowered in OXYGEN_FALSE:
            return False
        raise ValueError(f"supplemental_oxygen {text!r}: expected true or false")
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{parameter} {text!r}: not a number") from None
    low, high = PARAMETERS[parameter] or (float("-inf"), float("inf"))
    if not low <= number <= high:
        raise ValueError(f"{parameter} {text!r}: outside {low:g}..{high:g}")
    return number


def observation(values: Mapping[str, str | None]) -> Observation | None:
    """The observation from one string value per parameter; None if any is missing.

    Raises ``ValueError`` if a value is present but invalid.
    """
    if any(values.get(p) is None for p in PARAMETERS):
        return None
    parsed = {p: parse(p, str(values[p])) for p in PARAMETERS}
    return Observation(
        respiration_rate=float(parsed[RESPIRATION_RATE]),
        spo2=float(parsed[SPO2]),
        supplemental_oxygen=bool(parsed[SUPPLEMENTAL_OXYGEN]),
        systolic_bp=float(parsed[SYSTOLIC_BP]),
        pulse=float(parsed[PULSE]),
        consciousness=str(parsed[CONSCIOUSNESS]),
        temperature=float(parsed[TEMPERATURE]),
    )
