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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chorus_agents.domain.wire import DomainWire, Envelope
from chorus_agents.domain.wire import dumps as dumps
from chorus_agents.domain.wire import number as number
from chorus_agents.domain.wire import refusal_rule as refusal_rule
from chorus_agents.handler import HandlerError

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
        found = Envelope.parse(value)
        if found is None:
            return None
        return cls(found.id, found.kind, found.subject, found.time, found.data)

    @property
    def instant(self) -> datetime | None:
        return instant(self.time)


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


WIRE = DomainWire(MaintenanceError)
tool_json = WIRE.tool_json
request_json = WIRE.request_json
answer_data = WIRE.answer_data
required = WIRE.required
