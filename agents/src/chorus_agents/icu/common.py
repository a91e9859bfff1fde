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

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers import get_data_parts, get_message_text
from a2a.types.a2a_pb2 import Message, Task, TaskState

from chorus_agents.handler import HandlerError
from chorus_agents.tools import ToolResult

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
        if not isinstance(value, Mapping):
            return None
        sid, kind, subject = value.get("id"), value.get("kind"), value.get("subject")
        if not (isinstance(sid, str) and isinstance(kind, str) and isinstance(subject, str)):
            return None
        data = value.get("data")
        return cls(
            id=sid,
            kind=kind,
            patient_id=subject,
            time=str(value.get("time", "")),
            data=data if isinstance(data, Mapping) else {},
        )

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


def tool_json(result: ToolResult) -> Any:
    """A tool's JSON answer: its structured result, else its text parsed as JSON."""
    if result.is_error:
        raise IcuError(f"tool {result.tool}/{result.name} failed: {result.text}")
    if result.structured is not None:
        return result.structured
    try:
        return json.loads(result.text)
    except json.JSONDecodeError:
        raise IcuError(
            f"tool {result.tool}/{result.name} answered no JSON: {result.text[:200]}"
        ) from None


_RULE = re.compile(r"refused \((?P<rule>[a-z_]+)\)")


def refusal_rule(text: str) -> str:
    """The rule named in a refused operation's error text (``allergy``, ``max_dose``, ...)."""
    found = _RULE.search(text)
    return found.group("rule") if found else "unknown"


def request_json(text: str, data: tuple[Any, ...], *, agent: str) -> dict[str, Any]:
    """The JSON object a request carries: its first data part, else its text."""
    for item in data:
        if isinstance(item, Mapping):
            return dict(item)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise IcuError(f"agent {agent}: expected a JSON object, got {text[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise IcuError(f"agent {agent}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def answer_data(answer: Task | Message, *, agent: str) -> dict[str, Any]:
    """The data part of another agent's answer; a task that did not complete raises."""
    if isinstance(answer, Message):
        parts = list(answer.parts)
    else:
        if answer.status.state != TaskState.TASK_STATE_COMPLETED:
            why = get_message_text(answer.status.message) if answer.status.message else ""
            raise IcuError(
                f"agent {agent}: task {answer.id} ended {TaskState.Name(answer.status.state)}"
                f"{': ' + why if why else ''}"
            )
        parts = [part for artifact in answer.artifacts for part in artifact.parts]
    for item in get_data_parts(parts):
        if isinstance(item, Mapping):
            return dict(item)
    raise IcuError(f"agent {agent}: answered without a data part")


def dumps(value: Any) -> str:
    """Compact JSON, as the agents send it to each other."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
