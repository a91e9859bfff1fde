"""A real MCP server for the runtime's tests (the official SDK's ``MCPServer``).

Its tools keep state, so a test sees that a call really ran on the server:

- ``add(n)``: adds ``n`` to a counter and answers the new total;
- ``total()``: the counter;
- ``whoami()``: the idempotency key of the request (from its ``_meta``) and the
  ``Authorization`` header it came with;
- ``slow(seconds)``: sleeps, then answers ``done``;
- ``fail()``: a tool error (an ``isError`` result);
- ``cancel_all()``: empties the counter (never on an allow-list in the tests).

``serve_http`` serves it over streamable HTTP on a free loopback port inside the
test's event loop; ``python -m tests.agents.tools.mcp_server`` serves it over stdio.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

IDEMPOTENCY_KEY_META = "chorus/idempotency-key"


def build_server() -> MCPServer:
    """A fresh server with its own counter."""
    server = MCPServer("chorus-test-tools", log_level="WARNING")
    state = {"total": 0, "calls": 0}

    @server.tool()
    def add(n: int) -> str:
        """Adds n to the counter; answers the new total."""
        state["total"] += n
        state["calls"] += 1
        return str(state["total"])

    @server.tool()
    def total() -> str:
        """The counter."""
        return str(state["total"])

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The request's idempotency key and Authorization header."""
        meta: Any = ctx.request_context.meta or {}
        headers = ctx.headers or {}
        return f"key={meta.get(IDEMPOTENCY_KEY_META)} auth={headers.get('authorization')}"

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleeps, then answers done."""
        await asyncio.sleep(seconds)
        return "done"

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ToolError("the tool failed on purpose")

    @server.tool()
    def cancel_all() -> str:
        """Empties the counter."""
        state["total"] = 0
        return "cancelled"

    server.state = state  # type: ignore[attr-defined]
    return server


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with free_socket() as sock:
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def serve_http(server: MCPServer, port: int = 0) -> AsyncIterator[str]:
    """Serves ``server`` over streamable HTTP; yields its URL (``http://127.0.0.1:<port>/mcp``)."""
    sock = free_socket(port)
    uv = uvicorn.Server(
        uvicorn.Config(server.streamable_http_app(), log_level="warning", access_log=False)
    )
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        uv.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


if __name__ == "__main__":
    build_server().run("stdio")
