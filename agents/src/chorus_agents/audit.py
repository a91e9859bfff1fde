"""Audit records: every message, event, model call, tool call and decision of an agent.

Each record is one JSON object on ``chorus.<namespace>.audit``
(:func:`~chorus_api.topics.audit_topic`), keyed by the conversation (context id, else
task id, else the agent), version :data:`SCHEMA`::

    {"schema": "chorus.audit/v1", "id": "…", "time": "2026-…Z", "agent": "trading/risk",
     "kind": "tool.call", "task_id": "…", "context_id": "…",
     "correlation_id": "…", "causation_id": "…", "trace_id": "…", "span_id": "…",
     "fields": {"tool": "exchange", "name": "get_quote", …}}

Causation is explicit, so ``chorus trace <id>`` can rebuild the chain behind an action by
following ``causation_id`` back to the first record:

- within one handling (an A2A message, a domain event), each record's cause is the record
  written before it in that handling (a :class:`Scope`); the first one's cause is the
  record that made the caller send the message (header :data:`CAUSATION_HEADER`), if any;
- ``correlation_id`` is the same for every record of one handling: the JSON-RPC id of the
  request (``chorus-correlation-id``), or ``<topic>/<partition>/<offset>`` of the event.

Records go to the agent's :class:`~chorus_agents.binding.outbox.Outbox`, so inside the
Kafka loop they are committed in the same transaction as the outputs they explain, and
a request served over HTTP has them committed by the next cycle.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import trace

from chorus_agents.binding.codec import OutRecord
from chorus_agents.binding.outbox import Outbox

SCHEMA = "chorus.audit/v1"
"""The version of the record format; a reader rejects what it does not know."""
CAUSATION_HEADER = "chorus-causation-id"
"""A request's header: the id of the caller's audit record that made it send the request."""

KINDS = frozenset(
    {
        "message.received",
        "reply.sent",
        "event.received",
        "event.handled",
        "event.published",
        "model.call",
        "tool.call",
        "tool.refused",
        "agent.call",
        "decision",
        "error",
    }
)
"""The kinds the runtime writes; agents may add their own (``<area>.<what>``)."""


class AuditSink(Protocol):
    """Where the parts of an agent (model loop, tools) report what they did."""

    def record(self, kind: str, **fields: Any) -> str:
        """Writes one record of ``kind`` with ``fields``; returns its id."""
        ...


@dataclass
class Scope:
    """One handling (a message or an event): what its records share, and the last one's id."""

    correlation_id: str
    task_id: str | None = None
    context_id: str | None = None
    cause: str | None = None
    """The id of the record written last in this handling: the next record's cause."""
    records: list[str] = field(default_factory=list)


_scope: ContextVar[Scope | None] = ContextVar("chorus_audit_scope", default=None)


def current_scope() -> Scope | None:
    """The handling the running coroutine belongs to, if any."""
    return _scope.get()


class AuditLog:
    """The Kafka-backed :class:`AuditSink` of one agent; see the module docstring.

    ``observe`` is called with each record's kind and fields after it is queued (the
    metrics count tool calls and model tokens from it). Ids and time are injectable.
    """

    def __init__(
        self,
        *,
        agent: str,
        topic: str,
        outbox: Outbox,
        observe: Callable[[str, Mapping[str, Any]], None] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.agent = agent
        self.topic = topic
        self._outbox = outbox
        self._observe = observe
        self._new_id = new_id
        self._now = now

    @contextlib.contextmanager
    def scope(
        self,
        correlation_id: str,
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        cause: str | None = None,
    ) -> Iterator[Scope]:
        """Runs the body as one handling: its records share ids and chain their causes."""
        scope = Scope(correlation_id, task_id=task_id, context_id=context_id, cause=cause)
        token = _scope.set(scope)
        try:
            yield scope
        finally:
            _scope.reset(token)

    def record(self, kind: str, **fields: Any) -> str:
        """Queues a record of ``kind``; returns its id.

        Inside a :meth:`scope` the record carries the scope's ids and is caused by the
        scope's previous record. ``task_id``, ``context_id`` and ``causation_id`` in
        ``fields`` override them. Field values must be JSON (others are written as text).
        """
        if not kind or len(kind) > 64:
            raise ValueError(f"agent {self.agent}: audit kind {kind!r} is empty or too long")
        scope = _scope.get()
        record_id = self._new_id()
        task_id = fields.pop("task_id", scope.task_id if scope else None)
        context_id = fields.pop("context_id", scope.context_id if scope else None)
        causation_id = fields.pop("causation_id", scope.cause if scope else None)
        span = trace.get_current_span().get_span_context()
        body = {
            "schema": SCHEMA,
            "id": record_id,
            "time": self._now().isoformat().replace("+00:00", "Z"),
            "agent": self.agent,
            "kind": kind,
            "task_id": task_id,
            "context_id": context_id,
            "correlation_id": scope.correlation_id if scope else record_id,
            "causation_id": causation_id,
            "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
            "span_id": format(span.span_id, "016x") if span.is_valid else None,
            "fields": fields,
        }
        key = context_id or task_id or self.agent
        self._outbox.append(
            OutRecord(
                topic=self.topic,
                key=str(key).encode("utf-8"),
                value=json.dumps(
                    body, ensure_ascii=False, separators=(",", ":"), default=str
                ).encode("utf-8"),
                headers=(("chorus-sender", self.agent.encode("utf-8")),),
            )
        )
        if scope is not None:
            scope.cause = record_id
            scope.records.append(record_id)
        if self._observe is not None:
            self._observe(kind, fields)
        return record_id


def parse_record(value: bytes) -> dict[str, Any]:
    """An audit record from its Kafka value; raises ``ValueError`` naming what is wrong."""
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"audit record: not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        schema = body.get("schema") if isinstance(body, dict) else None
        raise ValueError(f"audit record: schema {schema!r} is not {SCHEMA}")
    return body
