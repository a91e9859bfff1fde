"""The tool gateway interface: how agent logic calls MCP tools, and what a call returns.

A :class:`ToolGateway` is the only way agent logic reaches a tool. It knows the agent's
tool servers (the ``tools`` of the runtime config: a Tool resource's name, where its MCP
server is, which of its tools the agent may call) and enforces the rules around a call:
the allow-list, a timeout, retries of transient failures, a circuit breaker per server,
an idempotency key, audit records and metrics.

Contract of :meth:`ToolGateway.call`:

- safe to call concurrently, also for the same tool server;
- returns a :class:`ToolResult` whenever the server answered, including a tool's own
  error (``is_error``: the tool ran and failed; the caller, usually a model, decides);
- raises :class:`ToolRefused` before anything is sent when the agent may not call that
  tool (not on the allow-list, or an unknown tool server); the refusal is audited;
- raises :class:`ToolUnavailable` (``retryable``) when the server could not be reached
  or did not answer in time after the configured attempts, or while its circuit is open;
- raises :class:`ToolCallFailed` when the server rejected the request (an MCP protocol
  error such as invalid parameters): trying again would not help.

The idempotency key is sent in the request's ``_meta`` under :data:`IDEMPOTENCY_KEY_META`
(``chorus/idempotency-key``). A call may reach the server more than once (retries after a
timeout, a redelivered input): servers with side effects should remember the keys they
executed and answer a repeated key with the first answer.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

IDEMPOTENCY_KEY_META = "chorus/idempotency-key"
"""The ``_meta`` key of a ``tools/call`` request that carries its idempotency key."""


class AuditSink(Protocol):
    """Where audit records go (the namespace's audit topic, or memory in tests).

    ``record`` must not block and must not raise for a well-formed record; ``kind`` is one
    of ``tool.call``, ``tool.refused``, ``model.call``, ``decision``, and ``fields`` are
    JSON values. Secrets never appear in them. What it returns (a record id, say) is not
    used, so :class:`chorus_agents.audit.AuditLog` fits as it is.
    """

    def record(self, kind: str, **fields: Any) -> object:
        """Records one audit event."""


class NullAudit:
    """An :class:`AuditSink` that drops everything."""

    def record(self, kind: str, **fields: Any) -> None:
        """Drops the record."""


class MemoryAudit:
    """An :class:`AuditSink` that keeps the records in a list (tests, local runs)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def record(self, kind: str, **fields: Any) -> None:
        """Appends ``(kind, fields)``."""
        self.records.append((kind, dict(fields)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The fields of the records of ``kind``, in order."""
        return [fields for k, fields in self.records if k == kind]


class ToolError(RuntimeError):
    """A tool call that did not produce a result; the message names agent, tool and name."""

    retryable = False

    def __init__(self, message: str, *, tool: str, name: str) -> None:
        super().__init__(message)
        self.tool = tool
        self.name = name


class ToolRefused(ToolError):
    """The agent may not call this tool; nothing was sent."""


class ToolUnavailable(ToolError):
    """The server could not be reached or did not answer in time; another try may work."""

    retryable = True


class ToolTimeout(ToolUnavailable):
    """The last attempt did not finish within the tool's timeout."""


class CircuitOpen(ToolUnavailable):
    """The server failed repeatedly; calls fail fast until its cool-down has passed."""


class ToolCallFailed(ToolError):
    """The server rejected the request (an MCP protocol error); retrying will not help."""


@dataclass(frozen=True)
class ToolInfo:
    """A tool the agent may call: its server (a Tool resource), name, description, schema."""

    tool: str
    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ToolResult:
    """What a tool answered.

    ``text`` joins the text content blocks; ``content`` holds every block as JSON (images,
    resources, ...); ``structured`` the structured result, when the tool gave one.
    """

    tool: str
    name: str
    text: str
    is_error: bool = False
    content: tuple[Mapping[str, Any], ...] = ()
    structured: Any = None
    idempotency_key: str = ""
    attempts: int = 1


class ToolGateway(ABC):
    """Calls the agent's MCP tools under its rules; see the module docstring."""

    @abstractmethod
    async def list_tools(self) -> tuple[ToolInfo, ...]:
        """The tools the agent may call and their servers offer, server by server.

        A server that cannot be reached raises :class:`ToolUnavailable`; an allowed
        name its server does not offer is left out (and logged).
        """

    @abstractmethod
    async def call(
        self, tool: str, name: str, arguments: Mapping[str, Any], *, idempotency_key: str
    ) -> ToolResult:
        """Calls ``name`` on the server of the Tool ``tool``; see the module docstring."""

    @abstractmethod
    async def aclose(self) -> None:
        """Closes every session (stops stdio servers); later calls reconnect."""


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """A stable digest of a call's arguments for audit records (the values stay out)."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
