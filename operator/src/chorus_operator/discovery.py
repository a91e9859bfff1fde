"""Asking a Tool's MCP server which tools it offers (MCP ``tools/list`` over streamable HTTP).

The official ``mcp`` client does the talking; the operator only adds the bearer token of
the Tool's ``mcp.auth`` and an overall deadline, so a server that hangs cannot stall a
reconcile. :func:`discover` either returns every tool listed (all pages) or raises
:class:`DiscoveryError` with a message naming the endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


@dataclass(frozen=True)
class OfferedTool:
    """One tool the server listed."""

    name: str
    description: str | None


class DiscoveryError(RuntimeError):
    """The server could not be asked, or did not answer ``tools/list`` properly."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


async def _list(endpoint: str, token: str | None, timeout: float) -> list[OfferedTool]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    # As the mcp docs advise for custom headers: our own client, handed to the transport.
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout))
    found: list[OfferedTool] = []
    async with http, Client(streamable_http_client(endpoint, http_client=http)) as client:
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            found += [OfferedTool(t.name, t.description) for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                return found


async def discover(endpoint: str, *, token: str | None, timeout: float) -> list[OfferedTool]:
    """Every tool the MCP server at ``endpoint`` lists, within ``timeout`` seconds overall."""
    try:
        return await asyncio.wait_for(_list(endpoint, token, timeout), timeout=timeout)
    except TimeoutError:
        raise DiscoveryError(f"{endpoint}: no answer to tools/list within {timeout:g}s") from None
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # the client raises exception groups from its task group
        if not isinstance(exc, Exception | BaseExceptionGroup):
            raise
        raise DiscoveryError(f"{endpoint}: {_describe(exc)}") from None
