"""What the maintenance agents share: the signal envelope, topics, the plant's rules of thumb.

Signals come from ``chorus_flink.jobs.maintenance`` on ``maintenance.signals`` as
CloudEvents-style envelopes ``{specversion, id, source, type, kind, subject, time, data}``
keyed by the machine id (``subject``): an ``anomaly`` per anomalous reading (its values,
z-scores and ``score``) and a ``maintenance_alert`` per run of consecutive anomalies
(``first_time``, ``last_time``, ``max_score``, ``anomalies``). An incident is named by its
alert's ``id`` (deterministic: ``maintenance_alert:<machine>:<time>``), and every agent
carries it as ``signal_id`` in what it publishes and audits (an id-like field, so
``chorus trace <signal id>`` finds it), beside the ``work_order_id`` once there is one.

Agents talk to each other with JSON objects as the A2A message text, and answer with a
data part (:func:`answer_data` reads it back).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from a2a.helpers import get_data_parts, get_message_text
from a2a.types.a2a_pb2 import Message, Task, TaskState

from chorus_agents.handler import HandlerError
from chorus_agents.tools import ToolResult

CMMS = "cmms"
"""The Tool resource of the maintenance management system's MCP server."""
TELEMETRY = "maintenance.telemetry"
"""The telemetry generator's output, the Flink job's input."""
SIGNALS = "maintenance.signals"
DIAGNOSES = "maintenance.diagnoses"
WORK_ORDERS = "maintenance.work-orders"
SCHEDULE = "maintenance.schedule"

ANOMALY = "anomaly"
ALERT = "maintenance_alert"


class MaintenanceError(HandlerError):
    """An agent of the maintenance domain could not do its part (the message says which)."""


@dataclass(frozen=True)
class Signal:
    """One signal of ``maintenance.signals``."""

    id: str
    kind: str
    machine_id: str
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
            machine_id=subject,
            time=str(value.get("time", "")),
            data=data if isinstance(data, Mapping) else {},
        )

    @property
    def instant(self) -> datetime | None:
        return instant(self.time)


def number(value: Any) -> float:
    """``value`` as a float; 0 when it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def instant(value: Any) -> datetime | None:
    """An ISO 8601 time (the envelope's ``...Z``, or Flink's zone-less JSON timestamps, UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso_minutes(value: datetime) -> str:
    """A time as the maintenance system writes it (``2026-01-05T10:00+00:00``)."""
    return value.astimezone(UTC).isoformat(timespec="minutes")


def tool_json(result: ToolResult) -> Any:
    """A tool's JSON answer: its structured result, else its text parsed as JSON."""
    if result.is_error:
        raise MaintenanceError(f"tool {result.tool}/{result.name} failed: {result.text}")
    if result.structured is not None:
        return result.structured
    try:
        return json.loads(result.text)
    except json.JSONDecodeError:
        raise MaintenanceError(
            f"tool {result.tool}/{result.name} answered no JSON: {result.text[:200]}"
        ) from None


_RULE = re.compile(r"refused \((?P<rule>[a-z_]+)\)")


def refusal_rule(text: str) -> str:
    """The maintenance system's rule named in a refusal's error text (``out_of_stock``, ...)."""
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
        raise MaintenanceError(
            f"agent {agent}: expected a JSON object, got {text[:200]!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise MaintenanceError(
            f"agent {agent}: expected a JSON object, got {type(parsed).__name__}"
        )
    return parsed


def required(request: Mapping[str, Any], *names: str, agent: str) -> tuple[str, ...]:
    """The string fields ``names`` of a request; a missing one raises, naming it."""
    values = []
    for name in names:
        value = request.get(name)
        if not isinstance(value, str) or not value:
            raise MaintenanceError(f"agent {agent}: a request without {name!r}")
        values.append(value)
    return tuple(values)


def answer_data(answer: Task | Message, *, agent: str) -> dict[str, Any]:
    """The data part of another agent's answer; a task that did not complete raises."""
    if isinstance(answer, Message):
        parts = list(answer.parts)
    else:
        if answer.status.state != TaskState.TASK_STATE_COMPLETED:
            why = get_message_text(answer.status.message) if answer.status.message else ""
            raise MaintenanceError(
                f"agent {agent}: task {answer.id} ended {TaskState.Name(answer.status.state)}"
                f"{': ' + why if why else ''}"
            )
        parts = [part for artifact in answer.artifacts for part in artifact.parts]
    for item in get_data_parts(parts):
        if isinstance(item, Mapping):
            return dict(item)
    raise MaintenanceError(f"agent {agent}: answered without a data part")


def dumps(value: Any) -> str:
    """Compact JSON, as the agents send it to each other."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
