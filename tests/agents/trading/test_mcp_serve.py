"""``chorus mcp serve``: a domain's MCP server run by the shared runtime's command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from chorus_agents.cli import app
from chorus_agents.cli.mcp import ServerModuleError, load_server
from mcp.client.client import Client
from typer.testing import CliRunner

from tests.agents.tools.mcp_server import free_port
from tests.services.base import port_open, wait_until

EXCHANGE_TOOLS = {
    "get_quote",
    "place_order",
    "cancel_order",
    "get_positions",
    "list_orders",
    "restrict_symbol",
    "lift_restriction",
}


@pytest.mark.unit
def test_a_module_without_create_server_is_refused_by_name() -> None:
    with pytest.raises(ServerModuleError, match=r"chorus_agents\.trading\.exchange: has no"):
        load_server("chorus_agents.trading.exchange")
    result = CliRunner().invoke(app, ["mcp", "serve", "chorus_agents.no_such_module"])
    assert result.exit_code == 2
    assert "chorus_agents.no_such_module: cannot import it" in result.output


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_mcp_serve_runs_the_exchange_over_http(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "mcp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("chorus")),
                *("mcp", "serve", "chorus_agents.trading.exchange_server"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: port_open(port),
            what="chorus mcp serve to listen",
            timeout=60,
            process=process,
            log=log,
        )
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            listed = await client.list_tools()
            quote = await client.call_tool("get_quote", {"symbol": "ACME"})
        assert {tool.name for tool in listed.tools} == EXCHANGE_TOOLS
        assert quote.structured_content is not None
        assert quote.structured_content["last"] == 120.0  # the default prices
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_mcp_serve_speaks_stdio() -> None:
    from mcp import StdioServerParameters

    command = str(Path(sys.executable).with_name("chorus"))
    params = StdioServerParameters(
        command=command,
        args=["mcp", "serve", "chorus_agents.trading.exchange_server", "--transport", "stdio"],
    )
    async with Client(params) as client:
        listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == EXCHANGE_TOOLS
