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

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from a2a.helpers import get_data_parts, get_message_text
from a2a.types.a2a_pb2 import Message, Task, TaskState

from chorus_agents.handler import HandlerError
from chorus_agents.tools import ToolResult

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
        if not isinstance(value, Mapping):
            return None
        sid, kind, subject = value.get("id"), value.get("kind"), value.get("subject")
        data = value.get("data")
        if not (isinstance(sid, str) and isinstance(kind, str) and isinstance(subject, str)):
            return None
        if not isinstance(data, Mapping) or not isinstance(data.get("customer_id"), str):
            return None
        return cls(
            id=sid,
            kind=kind,
            conversation_id=subject,
            customer_id=data["customer_id"],
            time=str(value.get("time", "")),
            data=data,
        )

    @property
    def reasons(self) -> tuple[str, ...]:
        """A ``sentiment_drop``'s reasons (``trend_drop``, ``below_floor``)."""
        return tuple(r for r in str(self.data.get("reason", "")).split(",") if r)

    @property
    def actionable(self) -> bool:
        """Whether the trigger is worth an escalation; see the module docstring."""
        if self.kind == "sentiment_drop":
            return "below_floor" in self.reasons or _number(self.data.get("trend")) < UNHAPPY_TREND
        if self.kind == "long_wait":
            return True
        if self.kind == "repeat_contact":
            return _number(self.data.get("gap_seconds"), default=1e12) < REPEAT_CONTACT_SECONDS
        return False

    @property
    def summary(self) -> str:
        """One line for people: what happened in which conversation."""
        if self.kind == "sentiment_drop":
            detail = f"sentiment trend {_number(self.data.get('trend')):+.2f}"
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


def _number(value: Any, *, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def tool_json(result: ToolResult) -> Any:
    """A tool's JSON answer: its structured result, else its text parsed as JSON."""
    if result.is_error:
        raise SupportError(f"tool {result.tool}/{result.name} failed: {result.text}")
    if result.structured is not None:
        return result.structured
    try:
        return json.loads(result.text)
    except json.JSONDecodeError:
        raise SupportError(
            f"tool {result.tool}/{result.name} answered no JSON: {result.text[:200]}"
        ) from None


def refusal_rule(text: str) -> str:
    """The back end's rule named in a refused operation's error text (``refund_window``, ...)."""
    marker = "refused ("
    start = text.find(marker)
    if start < 0:
        return "unknown"
    start += len(marker)
    end = text.find(")", start)
    rule = text[start:end] if end > start else ""
    return rule if rule.replace("_", "").isalnum() else "unknown"


def request_json(text: str, data: tuple[Any, ...], *, agent: str) -> dict[str, Any]:
    """The JSON object a request carries: its first data part, else its text."""
    for item in data:
        if isinstance(item, Mapping):
            return dict(item)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise SupportError(f"agent {agent}: expected a JSON object, got {text[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise SupportError(f"agent {agent}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def answer_data(answer: Task | Message, *, agent: str) -> dict[str, Any]:
    """The data part of another agent's answer; a task that did not complete raises."""
    if isinstance(answer, Message):
        parts = list(answer.parts)
    else:
        if answer.status.state != TaskState.TASK_STATE_COMPLETED:
            why = get_message_text(answer.status.message) if answer.status.message else ""
            raise SupportError(
                f"agent {agent}: task {answer.id} ended {TaskState.Name(answer.status.state)}"
                f"{': ' + why if why else ''}"
            )
        parts = [part for artifact in answer.artifacts for part in artifact.parts]
    for item in get_data_parts(parts):
        if isinstance(item, Mapping):
            return dict(item)
    raise SupportError(f"agent {agent}: answered without a data part")


def dumps(value: Any) -> str:
    """Compact JSON, as the agents send it to each other."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
