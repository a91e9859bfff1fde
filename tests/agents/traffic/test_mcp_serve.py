"""``chorus mcp serve``: the signal controllers run by the shared runtime's command."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from chorus_agents.cli.mcp import load_server
from chorus_agents.traffic.signals import default_phases
from mcp import StdioServerParameters
from mcp.client.client import Client

SIGNALS_TOOLS = {
    "get_timing",
    "get_neighbour_timings",
    "set_timing",
    "preempt_route",
    "clear_preemption",
    "list_preemptions",
}


@pytest.mark.unit
def test_the_signals_server_module_offers_create_server() -> None:
    assert load_server("chorus_agents.traffic.signals_server").name == "signals"


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_mcp_serve_runs_the_signal_controllers() -> None:
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("chorus")),
        args=["mcp", "serve", "chorus_agents.traffic.signals_server", "--transport", "stdio"],
    )
    async with Client(params) as client:
        listed = await client.list_tools()
        timing = await client.call_tool("get_timing", {"intersection_id": "A1"})
    assert {tool.name for tool in listed.tools} == SIGNALS_TOOLS
    assert timing.structured_content is not None
    greens = {p["name"]: p["green_seconds"] for p in timing.structured_content["phases"]}
    assert greens == {p.name: p.green_seconds for p in default_phases()}
