"""``chorus mcp serve <module>``: run a domain's MCP server from the shared runtime image.

The module must expose ``create_server() -> MCPServer`` (the official SDK's server, its
tools registered). A Tool whose ``mcp.server`` uses the runtime image runs it with the
image's entrypoint ``chorus`` and the Tool's ``args``::

    args: [mcp, serve, chorus_agents.trading.exchange_server, --port, "8000"]

Over ``http`` (the default) the server speaks streamable HTTP at ``--path`` (``/mcp``,
the Tool's ``mcp.server.path`` default) on ``--host``:``--port``; over ``stdio`` it
speaks on the process's standard input and output (an agent's ``tools[].command``).
"""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Annotated, Any

import typer
from mcp.server.mcpserver import MCPServer

from chorus_agents.mcpserver import run_server

app = typer.Typer(help="Run MCP tool servers.", no_args_is_help=True)


class Transport(StrEnum):
    HTTP = "http"
    STDIO = "stdio"


class ServerModuleError(RuntimeError):
    """The module cannot be imported or has no usable ``create_server()``."""


def load_server(module_name: str) -> MCPServer[Any]:
    """The server ``module_name.create_server()`` makes."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ServerModuleError(f"MCP server {module_name}: cannot import it: {exc}") from exc
    factory = getattr(module, "create_server", None)
    if not callable(factory):
        raise ServerModuleError(
            f"MCP server {module_name}: has no create_server() (it must return an MCPServer)"
        )
    server = factory()
    if not isinstance(server, MCPServer):
        raise ServerModuleError(
            f"MCP server {module_name}: create_server() returned "
            f"{type(server).__name__}, not an mcp MCPServer"
        )
    return server


@app.command("serve")
def serve(
    module: Annotated[
        str,
        typer.Argument(
            help="A module with create_server(), e.g. chorus_agents.trading.exchange_server."
        ),
    ],
    host: Annotated[str, typer.Option(help="The address to listen on (http).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="The port to listen on (http).")] = 8000,
    path: Annotated[str, typer.Option(help="The MCP endpoint's path (http).")] = "/mcp",
    transport: Annotated[
        Transport, typer.Option(help="http (streamable HTTP) or stdio.")
    ] = Transport.HTTP,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level (http).")] = "warning",
) -> None:
    """Serves the module's MCP server until interrupted."""
    try:
        server = load_server(module)
    except ServerModuleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if transport is Transport.HTTP:
        typer.echo(f"MCP server {module}: http://{host}:{port}{path}", err=True)
    run_server(
        server, transport=transport.value, host=host, port=port, path=path, log_level=log_level
    )
