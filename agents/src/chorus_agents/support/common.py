"""What the customer service agents share: the trigger envelope, what is mild, topics, wire.

Triggers come from ``chorus_flink.jobs.customer_service`` on ``support.signals`` as
CloudEvents-style envelopes ``{specversion, id, source, type, kind, subject, time, data}``
keyed by the conversation id (``subject``); ``data.customer_id`` names the customer. An
incident is named by its trigger's ``id`` (deterministic in the job), and every agent
carries it as ``incident`` in what it publishes and audits, so a trace follows
trigger -> escalation -> resolution.

The job's thresholds are deliberately eager; the agents escalate only what is not
*mild* (:attr:`Trigger.actionable`):

- ``sentiment_drop`` whose ``reason`` includes ``below_floor`` (the trend fell below the
  job's floor), or whose trend is below :data:`UNHAPPY_TREND`; a ``trend_drop`` that
  leaves the customer at or above it (happy to neutral) is mild;
- ``long_wait``: always (the customer waited longer than the job's timeout);
- ``repeat_contact`` within :data:`REPEAT_CONTACT_SECONDS` (an hour) of the previous
  conversation; coming back later with another question is mild.

Agents talk to each other with JSON objects as the A2A message text, and answer with a
data part (:func:`answer_data` reads it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.domain.wire import DomainWire, Envelope, number
from chorus_agents.domain.wire import dumps as dumps
from chorus_agents.domain.wire import refusal_rule as refusal_rule
from chorus_agents.handler import HandlerError

HELPDESK = "helpdesk"
"""The Tool resource of the helpdesk's MCP server (CRM, knowledge base, orders)."""
MESSAGES = "support.messages"
"""The chat generator's output, the Flink job's input."""
SIGNALS = "support.signals"
ESCALATIONS = "support.escalations"
REFUNDS = "support.refunds"
GUIDANCE = "support.guidance"

KINDS = frozenset({"sentiment_drop", "long_wait", "repeat_contact"})
"""The trigger kinds the job writes."""
UNHAPPY_TREND = -0.25
REPEAT_CONTACT_SECONDS = 3600


class SupportError(HandlerError):
    """An agent of the customer service domain could not do its part (the message says which)."""


@dataclass(frozen=True)
class Trigger:
    """One escalation trigger of ``support.signals``."""

    id: str
    kind: str
    conversation_id: str
    customer_id: str
    time: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> Trigger | None:
        """The trigger in a record's parsed value; ``None`` when it is not one."""
        found = Envelope.parse(value)
        if found is None or not isinstance(found.data.get("customer_id"), str):
            return None
        return cls(
            id=found.id,
            kind=found.kind,
            conversation_id=found.subject,
            customer_id=found.data["customer_id"],
            time=found.time,
            data=found.data,
        )

    @property
    def reasons(self) -> tuple[str, ...]:
        """A ``sentiment_drop``'s reasons (``trend_drop``, ``below_floor``)."""
        return tuple(r for r in str(self.data.get("reason", "")).split(",") if r)

    @property
    def actionable(self) -> bool:
        """Whether the trigger is worth an escalation; see the module docstring."""
        if self.kind == "sentiment_drop":
            return "below_floor" in self.reasons or number(self.data.get("trend")) < UNHAPPY_TREND
        if self.kind == "long_wait":
            return True
        if self.kind == "repeat_contact":
            return number(self.data.get("gap_seconds"), default=1e12) < REPEAT_CONTACT_SECONDS
        return False

    @property
    def summary(self) -> str:
        """One line for people: what happened in which conversation."""
        if self.kind == "sentiment_drop":
            detail = f"sentiment trend {number(self.data.get('trend')):+.2f}"
            if self.reasons:
                detail += f" ({', '.join(self.reasons)})"
        elif self.kind == "long_wait":
            detail = f"no answer within {self.data.get('timeout_seconds')} s"
        elif self.kind == "repeat_contact":
            previous = self.data.get("previous_conversation_id")
            detail = f"back {self.data.get('gap_seconds')} s after {previous}"
        else:
            detail = self.kind
        return f"{self.kind} in {self.conversation_id}: {detail}"


WIRE = DomainWire(SupportError)
tool_json = WIRE.tool_json
request_json = WIRE.request_json
answer_data = WIRE.answer_data
