"""Tool call metrics, in prometheus-client's default registry (the runtime's ``/metrics``).

- ``chorus_tool_calls_total{tool,name,outcome}``: calls by outcome: ``ok``, ``error`` (the
  tool answered ``isError``), ``refused``, ``timeout``, ``unavailable``, ``circuit_open``,
  ``failed`` (a protocol error);
- ``chorus_tool_call_seconds{tool,name}``: how long the calls that reached the server
  took, retries included.

:class:`ToolMetrics` is the hook the gateway calls; replace it to count elsewhere.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TOOL_CALLS = Counter("chorus_tool_calls", "MCP tool calls by outcome", ["tool", "name", "outcome"])
TOOL_CALL_SECONDS = Histogram(
    "chorus_tool_call_seconds",
    "Duration of MCP tool calls that reached the server, retries included",
    ["tool", "name"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class ToolMetrics:
    """Counts a finished call; the default writes the Prometheus metrics above."""

    def observe(self, tool: str, name: str, outcome: str, seconds: float | None) -> None:
        """One call of ``name`` on ``tool`` ended with ``outcome`` after ``seconds``."""
        TOOL_CALLS.labels(tool, name, outcome).inc()
        if seconds is not None:
            TOOL_CALL_SECONDS.labels(tool, name).observe(seconds)
