"""The signal controllers as an MCP server (official SDK, streamable HTTP or stdio).

    python -m chorus_agents.traffic.signals_server --port 8000        # streamable HTTP at /mcp
    python -m chorus_agents.traffic.signals_server --transport stdio

Tools: ``get_timing`` and ``get_neighbour_timings`` to look and coordinate; ``set_timing``
to change green times; ``preempt_route``, ``clear_preemption`` and ``list_preemptions``
for emergency vehicles. A refused operation is a tool error (``isError``) whose text names
the rule. The idempotency key is taken from the call's ``_meta``
(``chorus/idempotency-key``), which the Chorus tool gateway sets per call, or from the
``idempotency_key`` argument.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from chorus_agents.traffic.signals import SignalControllers, SignalRefused

IDEMPOTENCY_META = "chorus/idempotency-key"


def _meta_key(ctx: Context[Any, Any] | None) -> str | None:
    """The idempotency key the caller put in the request's ``_meta``, if any."""
    if ctx is None:
        return None
    meta = ctx.request_context.meta or {}
    value = meta.get(IDEMPOTENCY_META)
    return str(value) if value is not None else None


def _refused(what: str, refused: SignalRefused) -> ToolError:
    return ToolError(f"{what} refused ({refused.rule}): {refused}")


def build_server(signals: SignalControllers) -> MCPServer[Any]:
    """An MCP server whose tools act on ``signals``."""
    server: MCPServer[Any] = MCPServer(
        "signals", instructions="Traffic signal controllers: timings, coordination, pre-emption."
    )

    @server.tool(
        description="An intersection's phases (green, min, max seconds), cycle and pre-emption."
    )
    def get_timing(intersection_id: str) -> dict[str, Any]:
        try:
            return asdict(signals.timing(intersection_id))
        except SignalRefused as refused:
            raise _refused("lookup", refused) from refused

    @server.tool(description="The timings of the intersections adjacent to one, to coordinate.")
    def get_neighbour_timings(intersection_id: str) -> dict[str, Any]:
        try:
            return {"timings": [asdict(t) for t in signals.neighbour_timings(intersection_id)]}
        except SignalRefused as refused:
            raise _refused("lookup", refused) from refused

    @server.tool(
        description=(
            "Set green seconds per phase (east-west, north-south) of an intersection. Each "
            "green must stay within its phase's bounds and the cycle within 120 s; refused "
            "while the intersection is pre-empted."
        )
    )
    def set_timing(
        intersection_id: str,
        greens: dict[str, float],
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return asdict(signals.set_timing(intersection_id, greens, idempotency_key=key))
        except SignalRefused as refused:
            raise _refused("timing", refused) from refused

    @server.tool(
        description=(
            "Give an emergency vehicle green along a route of adjacent intersections "
            "(e.g. ['A1', 'A2', 'B2']) until the pre-emption is cleared."
        )
    )
    def preempt_route(
        vehicle_id: str,
        route: list[str],
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return asdict(signals.preempt(vehicle_id, route, idempotency_key=key))
        except SignalRefused as refused:
            raise _refused("pre-emption", refused) from refused

    @server.tool(description="End a vehicle's pre-emption; its intersections resume their plan.")
    def clear_preemption(vehicle_id: str) -> dict[str, Any]:
        try:
            return asdict(signals.clear(vehicle_id))
        except SignalRefused as refused:
            raise _refused("clearing", refused) from refused

    @server.tool(description="The active pre-emptions.")
    def list_preemptions() -> dict[str, Any]:
        return {"preemptions": [asdict(p) for p in signals.preemptions()]}

    return server


def create_server() -> MCPServer[Any]:
    """The controllers of the reference network with their default plans: what
    ``chorus mcp serve chorus_agents.traffic.signals_server`` runs."""
    return build_server(SignalControllers())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chorus_agents.traffic.signals_server")
    parser.add_argument("--transport", choices=("http", "stdio"), default="http")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = build_server(SignalControllers())
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    app = server.streamable_http_app(host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
