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

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from chorus_agents import mcpserver
from chorus_agents.mcpserver import refusals
from chorus_agents.traffic.signals import SignalControllers, SignalRefused


def build_server(signals: SignalControllers) -> MCPServer[Any]:
    """An MCP server whose tools act on ``signals``."""
    server: MCPServer[Any] = MCPServer(
        "signals", instructions="Traffic signal controllers: timings, coordination, pre-emption."
    )

    @server.tool(
        description="An intersection's phases (green, min, max seconds), cycle and pre-emption."
    )
    def get_timing(intersection_id: str) -> dict[str, Any]:
        with refusals("lookup", SignalRefused):
            return asdict(signals.timing(intersection_id))

    @server.tool(description="The timings of the intersections adjacent to one, to coordinate.")
    def get_neighbour_timings(intersection_id: str) -> dict[str, Any]:
        with refusals("lookup", SignalRefused):
            return {"timings": [asdict(t) for t in signals.neighbour_timings(intersection_id)]}

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
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("timing", SignalRefused):
            return asdict(signals.set_timing(intersection_id, greens, idempotency_key=key))

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
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("pre-emption", SignalRefused):
            return asdict(signals.preempt(vehicle_id, route, idempotency_key=key))

    @server.tool(description="End a vehicle's pre-emption; its intersections resume their plan.")
    def clear_preemption(vehicle_id: str) -> dict[str, Any]:
        with refusals("clearing", SignalRefused):
            return asdict(signals.clear(vehicle_id))

    @server.tool(description="The active pre-emptions.")
    def list_preemptions() -> dict[str, Any]:
        return {"preemptions": [asdict(p) for p in signals.preemptions()]}

    return server


def create_server() -> MCPServer[Any]:
    """The controllers of the reference network with their default plans: what
    ``chorus mcp serve chorus_agents.traffic.signals_server`` runs."""
    return build_server(SignalControllers())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m``: serves :func:`create_server` (:func:`chorus_agents.mcpserver.main`)."""
    return mcpserver.main(
        create_server, argv, prog="python -m chorus_agents.traffic.signals_server"
    )


if __name__ == "__main__":
    raise SystemExit(main())
