"""MCP tools behind one interface (:class:`~chorus_agents.tools.base.ToolGateway`)."""

from chorus_agents.tools.base import (
    IDEMPOTENCY_KEY_META,
    AuditSink,
    CircuitOpen,
    MemoryAudit,
    NullAudit,
    ToolCallFailed,
    ToolError,
    ToolGateway,
    ToolInfo,
    ToolRefused,
    ToolResult,
    ToolTimeout,
    ToolUnavailable,
    arguments_digest,
)
from chorus_agents.tools.gateway import McpToolGateway
from chorus_agents.tools.metrics import ToolMetrics
from chorus_agents.tools.policy import BreakerState, CircuitBreaker, RetryPolicy

__all__ = [
    "IDEMPOTENCY_KEY_META",
    "AuditSink",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "McpToolGateway",
    "MemoryAudit",
    "NullAudit",
    "RetryPolicy",
    "ToolCallFailed",
    "ToolError",
    "ToolGateway",
    "ToolInfo",
    "ToolMetrics",
    "ToolRefused",
    "ToolResult",
    "ToolTimeout",
    "ToolUnavailable",
    "arguments_digest",
]
