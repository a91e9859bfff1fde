"""One MCP client session to one tool server, owned by a task of its own.

The official client (``mcp.Client``) runs its transport in an anyio task group: a
transport failure cancels the task that entered it. So each session is entered by a
background task that lives as long as the session, and callers only send requests
through it. A caller waits for its answer *or* the end of that task, so a dead
connection is an error for the caller, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from chorus_api.runtime import RuntimeTool
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult, Tool

T = TypeVar("T")


class SessionLost(ConnectionError):
    """The session ended (connection refused or dropped, server exited)."""


class McpSession:
    """A connected session; :meth:`open` starts it, :meth:`close` ends it."""

    def __init__(self, config: RuntimeTool) -> None:
        self.config = config
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """The session is open and its task still runs."""
        return self._client is not None and self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Connects (and initializes); raises :class:`SessionLost` with the reason on failure.

        Cancelling it (a timeout) stops the connection attempt.
        """
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.config.name}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self.close()
            raise
        finally:
            ready.cancel()
        if not self._ready.is_set():
            raise SessionLost(_reason(self._task))

    async def _run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            config = self.config
            if config.command:
                command, *args = config.command
                client = Client(StdioServerParameters(command=command, args=list(args)), cache=None)
            else:
                headers = {}
                if config.bearer_token_file is not None:
                    headers["Authorization"] = f"Bearer {_token(config)}"
                http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
                client = Client(
                    streamable_http_client(str(config.url), http_client=http), cache=None
                )
            self._client = await stack.enter_async_context(client)
            self._ready.set()
            await self._closing.wait()

    async def list_tools(self) -> list[Tool]:
        """Every tool the server offers (all pages)."""
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            page = await self._request(self._connected().list_tools(cursor=cursor))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return tools

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> CallToolResult:
        """``tools/call``; a lost session raises :class:`SessionLost`."""
        return await self._request(
            self._connected().call_tool(name, dict(arguments), meta=dict(meta))  # type: ignore[arg-type]
        )

    def _connected(self) -> Client:
        if self._client is None:
            raise SessionLost("not connected")
        return self._client

    async def _request(self, coro: Awaitable[T]) -> T:
        assert self._task is not None
        request = asyncio.ensure_future(coro)
        try:
            await asyncio.wait({request, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await request
        if request.cancelled():
            raise SessionLost(_reason(self._task))
        return request.result()

    async def close(self) -> None:
        """Ends the session (a stdio server is stopped); errors of a dead session are dropped."""
        self._closing.set()
        if self._task is not None:
            if not self._ready.is_set():
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._client = None


def _token(config: RuntimeTool) -> str:
    path = Path(str(config.bearer_token_file))
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SessionLost(
            f"tool '{config.name}': cannot read bearer token file {path}: {exc.strerror or exc}"
        ) from None


def _reason(task: asyncio.Task[None] | None) -> str:
    if task is None or not task.done():
        return "the session ended"
    if task.cancelled():
        return "the session was cancelled"
    exc = task.exception()
    if exc is None:
        return "the session closed"
    return "; ".join(_leaves(exc)) or type(exc).__name__


def _leaves(exc: BaseException) -> Sequence[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [text for inner in exc.exceptions for text in _leaves(inner)]
    return [f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__]
