"""What the ICU agents share: the signal envelope, risk bands, topics, and the wire shapes.

Signals come from ``chorus_flink.jobs.icu`` on ``icu.signals`` as CloudEvents-style
envelopes ``{specversion, id, source, type, kind, subject, time, data}`` keyed by the
patient id (``subject``). Kinds: ``news2_score`` (a patient's first score and every
change, with the seven values), ``deterioration`` (entering the medium or high band, or
a rise of the score; ``reason`` says which) and ``missing_vitals`` (``missing``,
comma-separated). An incident is named by its signal's ``id`` (deterministic:
``kind:subject:time``), and every agent carries that id as ``incident`` in what it
publishes and audits, so a trace follows signal -> assessment -> advice -> medication.

Agents talk to each other with JSON objects as the A2A message text, and answer with a
data part (:func:`answer_data` reads it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.domain.wire import DomainWire, Envelope
from chorus_agents.domain.wire import dumps as dumps
from chorus_agents.domain.wire import refusal_rule as refusal_rule
from chorus_agents.handler import HandlerError

CLINICAL = "clinical"
"""The Tool resource of the clinical MCP server (the EHR and the device gateway)."""
VITALS = "icu.vitals"
"""The vitals generator's output, the Flink job's input."""
SIGNALS = "icu.signals"
ASSESSMENTS = "icu.assessments"
MEDICATION_EVENTS = "icu.medication-events"
ADVICE = "icu.advice"
ESCALATIONS = "icu.escalations"

BANDS = ("low", "low-medium", "medium", "high")
"""The NEWS2 risk bands in increasing order of urgency (as the Flink job names them)."""


class IcuError(HandlerError):
    """An agent of the ICU domain could not do its part (the message says which)."""


def band_rank(band: str | None) -> int:
    """0 (low) to 3 (high); an unknown or missing band is -1."""
    return BANDS.index(band) if band in BANDS else -1


@dataclass(frozen=True)
class Signal:
    """One signal of ``icu.signals``."""

    id: str
    kind: str
    patient_id: str
    time: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> Signal | None:
        """The signal in a record's parsed value; ``None`` when it is not an envelope."""
        found = Envelope.parse(value)
        if found is None:
            return None
        return cls(found.id, found.kind, found.subject, found.time, found.data)

    @property
    def score(self) -> int | None:
        return _integer(self.data.get("score"))

    @property
    def previous_score(self) -> int | None:
        return _integer(self.data.get("previous_score"))

    @property
    def band(self) -> str:
        return str(self.data.get("band") or "")

    @property
    def reasons(self) -> tuple[str, ...]:
        """A deterioration's reasons (``entered_medium``, ``entered_high``, ``score_rise``)."""
        raw = self.data.get("reason")
        return tuple(r for r in str(raw).split(",") if r) if raw else ()

    @property
    def missing(self) -> tuple[str, ...]:
        """The parameters a ``missing_vitals`` signal names, in chart order."""
        raw = self.data.get("missing")
        return tuple(m for m in str(raw).split(",") if m) if raw else ()


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def number(value: Any) -> float | None:
    """``value`` as a float, ``None`` when it is not a number."""
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


WIRE = DomainWire(IcuError)
tool_json = WIRE.tool_json
request_json = WIRE.request_json
answer_data = WIRE.answer_data
