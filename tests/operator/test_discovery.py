"""Asking a real MCP server (mcp 2.x, streamable HTTP on loopback) which tools it offers."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator

import pytest
from chorus_operator.discovery import DiscoveryError, discover

from tests.operator.conftest import Space
from tests.operator.harness import Cluster, McpServer, Operator, wait_for

TOKEN = "s3cret-token"


@pytest.fixture
def guarded() -> Iterator[McpServer]:
    server = McpServer(tools=("get_quote", "get_positions"), token=TOKEN).start()
    yield server
    server.stop()


@pytest.mark.integration
def test_discover_lists_every_tool_with_the_bearer_token(guarded: McpServer) -> None:
    offered = asyncio.run(discover(guarded.url, token=TOKEN, timeout=10))
    assert {t.name for t in offered} == {"get_quote", "get_positions"}
    assert all(t.description and t.name in t.description for t in offered)


@pytest.mark.integration
def test_discover_fails_naming_the_endpoint_without_the_token(guarded: McpServer) -> None:
    with pytest.raises(DiscoveryError, match=re.escape(guarded.url)):
        asyncio.run(discover(guarded.url, token=None, timeout=10))


@pytest.mark.integration
def test_discover_fails_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{McpServer(tools=()).port}/mcp"
    with pytest.raises(DiscoveryError, match=re.escape(url)):
        asyncio.run(discover(url, token=None, timeout=5))


@pytest.mark.integration
def test_the_operator_discovers_a_tool_and_notices_when_it_goes(
    cluster: Cluster, space: Space, operator: Operator, guarded: McpServer
) -> None:
    ns = space.ns
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "quotes-token", "namespace": ns},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
        }
    )
    cluster.apply(
        {
            "apiVersion": "chorus.dev/v1alpha1",
            "kind": "Tool",
            "metadata": {"name": "quotes", "namespace": ns},
            "spec": {
                "mcp": {
                    "url": guarded.url,
                    "auth": {"bearerTokenSecretRef": {"name": "quotes-token", "key": "token"}},
                }
            },
        }
    )
    status = wait_for(
        lambda: (
            ((cluster.get("tool", "quotes", ns) or {}).get("status") or {}).get(
                "discoveredToolCount"
            )
            and (cluster.get("tool", "quotes", ns) or {})["status"]
        ),
        what="discovered",
    )
    assert status["discoveredToolCount"] == 2
    assert sorted(t["name"] for t in status["discoveredTools"]) == ["get_positions", "get_quote"]
    assert status["endpoint"] == guarded.url
    ready = cluster.condition("tool", "quotes", ns, "Ready") or {}
    assert ready["status"] == "True"

    # The server goes away: the periodic probe turns Discovered False, and keeps the list.
    guarded.stop()
    wait_for(
        lambda: (
            (cluster.condition("tool", "quotes", ns, "Discovered") or {}).get("reason")
            == "DiscoveryFailed"
        ),
        what="DiscoveryFailed after the server stopped",
    )
    after = (cluster.get("tool", "quotes", ns) or {})["status"]
    assert after["discoveredToolCount"] == 2
