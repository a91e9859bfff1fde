"""What the trading agents share: the signal envelope, severity, topics, and the wire shapes.

Signals come from ``chorus_flink.jobs.trading`` on ``trading.signals`` as CloudEvents-style
envelopes ``{specversion, id, source, type, kind, subject, time, data}`` keyed by the
symbol (``subject``). An incident is named by its signal's ``id`` (deterministic:
``kind:subject:time[:record]``), and every agent carries that id as ``incident`` in what
it publishes and audits, so a trace follows signal -> analysis -> risk -> order. Each
``decision`` audit record also carries it as ``signal_id``: an id-like key, which
``chorus trace <signal id>`` searches (:mod:`chorus_agents.trace`).

Severity (:attr:`Signal.severity`) is ``|deviation|`` for a ``price_spike`` and the
volume ``ratio`` for a ``volume_anomaly``; a spike of at least :data:`SEVERE_DEVIATION`
(5 %, a flash crash) or an anomaly of at least :data:`SEVERE_VOLUME_RATIO` is severe.

Agents talk to each other with JSON objects as the A2A message text, and answer with a
data part (:func:`answer_data` reads it back; :mod:`chorus_agents.domain.wire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.domain.wire import DomainWire, Envelope, number, refusal_rule
from chorus_agents.domain.wire import dumps as dumps
from chorus_agents.handler import HandlerError

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
CRASH_SUSPECT_DEVIATION = 0.04
"""A downward spike this deep may be a flash crash: compliance asks its model about it."""


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
        found = Envelope.parse(value)
        return (
            None
            if found is None
            else cls(found.id, found.kind, found.subject, found.time, found.data)
        )

    @property
    def severity(self) -> float:
        """``|deviation|`` of a spike, ``ratio`` of a volume anomaly, else 0."""
        if self.kind == "price_spike":
            return abs(number(self.data.get("deviation")))
        if self.kind == "volume_anomaly":
            return number(self.data.get("ratio"))
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
        return self.kind == "price_spike" and self.severe and number(self.data.get("deviation")) < 0

    @property
    def crash_suspect(self) -> bool:
        """A downward price spike of at least :data:`CRASH_SUSPECT_DEVIATION`: what
        compliance's pre-filter passes to its model, which decides whether it is a crash."""
        return (
            self.kind == "price_spike"
            and number(self.data.get("deviation")) <= -CRASH_SUSPECT_DEVIATION
        )


WIRE = DomainWire(TradingError)
tool_json = WIRE.tool_json
request_json = WIRE.request_json
answer_data = WIRE.answer_data


def rejection_rule(text: str) -> str:
    """The exchange rule named in a refused order's error text (``compliance``, ...)."""
    return refusal_rule(text, verb="order rejected")
