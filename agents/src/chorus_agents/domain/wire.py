"""The wire shapes every reference domain uses: signal envelopes, agent JSON, tool answers.

Signals come from the domain's Flink job (``chorus_flink.jobs.<domain>``) on
``<domain>.signals`` as CloudEvents-style envelopes ``{specversion, id, source, type,
kind, subject, time, data}``; :meth:`Envelope.parse` reads one. A domain's own signal
class names ``subject`` after what it is (``symbol``, ``machine_id``, ``patient_id``)
and adds its rules.

Agents talk to each other with JSON objects as the A2A message text (:func:`dumps`) and
answer with a data part; tools answer JSON (structured, or as text). :class:`DomainWire`
reads both, raising the domain's own :class:`~chorus_agents.handler.HandlerError`
subclass, with a message that names the tool or the agent, for anything else.
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


@dataclass(frozen=True)
class Envelope:
    """One signal envelope of a Flink job."""

    id: str
    kind: str
    subject: str
    time: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> Envelope | None:
        """The envelope in a record's parsed value; ``None`` unless ``id``, ``kind`` and
        ``subject`` are strings. ``data`` that is no object reads as ``{}``."""
        if not isinstance(value, Mapping):
            return None
        sid, kind, subject = value.get("id"), value.get("kind"), value.get("subject")
        if not (isinstance(sid, str) and isinstance(kind, str) and isinstance(subject, str)):
            return None
        data = value.get("data")
        return cls(
            id=sid,
            kind=kind,
            subject=subject,
            time=str(value.get("time", "")),
            data=data if isinstance(data, Mapping) else {},
        )


def number(value: Any, default: float = 0.0) -> float:
    """``value`` as a float; ``default`` when it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys, as the agents send it to each other."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def refusal_rule(text: str, *, verb: str = "refused") -> str:
    """The rule named in a refused tool call's error text, ``unknown`` without one.

    The MCP servers word a refusal ``<what> <verb> (<rule>): <message>``
    (:func:`chorus_agents.mcpserver.refusal`); the first such rule counts.
    """
    found = re.search(re.escape(verb) + r" \((?P<rule>[A-Za-z0-9_]+)\)", text)
    return found.group("rule") if found else "unknown"


class DomainWire:
    """Reads tool answers and agent messages, raising ``error`` (the domain's
    :class:`~chorus_agents.handler.HandlerError` subclass) for what is not JSON as expected.

    Stateless: one instance per domain, its bound methods exported by the domain's
    ``common.py`` (``tool_json = WIRE.tool_json``).
    """

    def __init__(self, error: type[HandlerError]) -> None:
        self.error = error

    def tool_json(self, result: ToolResult) -> Any:
        """A tool's JSON answer: its structured result, else its text parsed as JSON; a
        tool error or an answer that is no JSON raises."""
        if result.is_error:
            raise self.error(f"tool {result.tool}/{result.name} failed: {result.text}")
        if result.structured is not None:
            return result.structured
        try:
            return json.loads(result.text)
        except json.JSONDecodeError:
            raise self.error(
                f"tool {result.tool}/{result.name} answered no JSON: {result.text[:200]}"
            ) from None

    def request_json(self, text: str, data: tuple[Any, ...], *, agent: str) -> dict[str, Any]:
        """The JSON object a request to ``agent`` carries: its first data part, else its
        text; anything else raises."""
        for item in data:
            if isinstance(item, Mapping):
                return dict(item)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise self.error(f"agent {agent}: expected a JSON object, got {text[:200]!r}") from None
        if not isinstance(parsed, dict):
            raise self.error(f"agent {agent}: expected a JSON object, got {type(parsed).__name__}")
        return parsed

    def required(self, request: Mapping[str, Any], *names: str, agent: str) -> tuple[str, ...]:
        """The non-empty string fields ``names`` of a request; a missing one raises, naming it."""
        values = []
        for name in names:
            value = request.get(name)
            if not isinstance(value, str) or not value:
                raise self.error(f"agent {agent}: a request without {name!r}")
            values.append(value)
        return tuple(values)

    def answer_data(self, answer: Task | Message, *, agent: str) -> dict[str, Any]:
        """The data part of ``agent``'s answer; a task that did not complete, or an answer
        without a data part, raises."""
        if isinstance(answer, Message):
            parts = list(answer.parts)
        else:
            if answer.status.state != TaskState.TASK_STATE_COMPLETED:
                why = get_message_text(answer.status.message) if answer.status.message else ""
                raise self.error(
                    f"agent {agent}: task {answer.id} ended {TaskState.Name(answer.status.state)}"
                    f"{': ' + why if why else ''}"
                )
            parts = [part for artifact in answer.artifacts for part in artifact.parts]
        for item in get_data_parts(parts):
            if isinstance(item, Mapping):
                return dict(item)
        raise self.error(f"agent {agent}: answered without a data part")
