"""What the trading agents share: the signal envelope, severity, topics, and the wire shapes.

Signals come from ``chorus_flink.jobs.trading`` on ``trading.signals`` as CloudEvents-style
envelopes ``{specversion, id, source, type, kind, subject, time, data}`` keyed by the
symbol (``subject``). An incident is named by its signal's ``id`` (deterministic:
``kind:subject:time[:record]``), and every agent carries that id as ``incident`` in what
it publishes and audits, so a trace follows signal -> analysis -> risk -> order.

Severity (:attr:`Signal.severity`) is ``|deviation|`` for a ``price_spike`` and the
volume ``ratio`` for a ``volume_anomaly``; a spike of at least :data:`SEVERE_DEVIATION`
(5 %, a flash crash) or an anomaly of at least :data:`SEVERE_VOLUME_RATIO` is severe.

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

EXCHANGE = "exchange"
"""The Tool resource of the exchange's MCP server."""
SIGNALS = "trading.signals"
ANALYSIS = "trading.analysis"
RISK_SCORES = "trading.risk-scores"
ORDERS = "trading.orders"
COMPLIANCE = "trading.compliance"
TRADES = "trading.trades"
"""The market data generator's output, the Flink job's input."""

ACTIONABLE = frozenset({"price_spike", "volume_anomaly"})
"""Signal kinds the analyst acts on; ``vwap`` is context, not an incident."""
SEVERE_DEVIATION = 0.05
SEVERE_VOLUME_RATIO = 6.0


class TradingError(HandlerError):
    """An agent of the trading domain could not do its part (the message says which)."""


@dataclass(frozen=True)
class Signal:
    """One signal of ``trading.signals``."""

    id: str
    kind: str
    symbol: str
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
            symbol=subject,
            time=str(value.get("time", "")),
            data=data if isinstance(data, Mapping) else {},
        )

    @property
    def severity(self) -> float:
        """``|deviation|`` of a spike, ``ratio`` of a volume anomaly, else 0."""
        if self.kind == "price_spike":
            return abs(_number(self.data.get("deviation")))
        if self.kind == "volume_anomaly":
            return _number(self.data.get("ratio"))
        return 0.0

    @property
    def severe(self) -> bool:
        if self.kind == "price_spike":
            return self.severity >= SEVERE_DEVIATION
        if self.kind == "volume_anomaly":
            return self.severity >= SEVERE_VOLUME_RATIO
        return False

    @property
    def flash_crash(self) -> bool:
        """A severe downward price spike: what compliance vetoes trading in."""
        return (
            self.kind == "price_spike" and self.severe and _number(self.data.get("deviation")) < 0
        )


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def tool_json(result: ToolResult) -> Any:
    """A tool's JSON answer: its structured result, else its text parsed as JSON."""
    if result.is_error:
        raise TradingError(f"tool {result.tool}/{result.name} failed: {result.text}")
    if result.structured is not None:
        return result.structured
    try:
        return json.loads(result.text)
    except json.JSONDecodeError:
        raise TradingError(
            f"tool {result.tool}/{result.name} answered no JSON: {result.text[:200]}"
        ) from None


_RULE = re.compile(r"order rejected \((?P<rule>[a-z_]+)\)")


def rejection_rule(text: str) -> str:
    """The exchange rule named in a refused order's error text (``compliance``, ...)."""
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
        raise TradingError(f"agent {agent}: expected a JSON object, got {text[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise TradingError(f"agent {agent}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def answer_data(answer: Task | Message, *, agent: str) -> dict[str, Any]:
    """The data part of another agent's answer; a task that did not complete raises."""
    if isinstance(answer, Message):
        parts = list(answer.parts)
    else:
        if answer.status.state != TaskState.TASK_STATE_COMPLETED:
            why = get_message_text(answer.status.message) if answer.status.message else ""
            raise TradingError(
                f"agent {agent}: task {answer.id} ended {TaskState.Name(answer.status.state)}"
                f"{': ' + why if why else ''}"
            )
        parts = [part for artifact in answer.artifacts for part in artifact.parts]
    for item in get_data_parts(parts):
        if isinstance(item, Mapping):
            return dict(item)
    raise TradingError(f"agent {agent}: answered without a data part")


def dumps(value: Any) -> str:
    """Compact JSON, as the agents send it to each other."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
