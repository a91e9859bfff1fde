"""The MCP tool gateway against a real MCP server (the official SDK), over HTTP and stdio."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chorus_agents.tools import (
    CircuitOpen,
    McpToolGateway,
    MemoryAudit,
    RetryPolicy,
    ToolRefused,
    ToolTimeout,
    ToolUnavailable,
    arguments_digest,
)
from chorus_api.runtime import RuntimeTool
from mcp.server.mcpserver import MCPServer
from prometheus_client import REGISTRY

from tests.agents.tools.mcp_server import build_server, free_port, serve_http

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

AGENT = "trading/risk-assessor"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def tool(
    url: str, *, allow: tuple[str, ...] = ("add", "total", "whoami", "slow", "fail"), **extra: Any
) -> RuntimeTool:
    return RuntimeTool.model_validate(
        {"name": "counter", "url": url, "allow": list(allow), **extra}
    )


@pytest.fixture
def server() -> MCPServer:
    return build_server()


@pytest.fixture
async def url(server: MCPServer) -> AsyncIterator[str]:
    async with serve_http(server) as url:
        yield url


@pytest.fixture
async def gateways() -> AsyncIterator[list[McpToolGateway]]:
    made: list[McpToolGateway] = []
    yield made
    for gateway in made:
        await gateway.aclose()


def make(gateways: list[McpToolGateway], *tools: RuntimeTool, **kwargs: Any) -> McpToolGateway:
    kwargs.setdefault("sleep", Sleeps())
    gateway = McpToolGateway(tools, agent=AGENT, **kwargs)
    gateways.append(gateway)
    return gateway


def counter(server: MCPServer) -> dict[str, int]:
    state: dict[str, int] = server.state  # type: ignore[attr-defined]
    return state


async def test_allowed_tools_are_listed_and_called_on_the_server(
    server: MCPServer, url: str, gateways: list[McpToolGateway]
) -> None:
    audit = MemoryAudit()
    gateway = make(gateways, tool(url, allow=("add", "total", "not_there")), audit=audit)

    listed = await gateway.list_tools()
    assert [(t.tool, t.name) for t in listed] == [("counter", "add"), ("counter", "total")]
    assert listed[0].description == "Adds n to the counter; answers the new total."
    assert listed[0].input_schema["properties"]["n"]["type"] == "integer"

    first = await gateway.call("counter", "add", {"n": 2}, idempotency_key="task-1/1/0")
    second = await gateway.call("counter", "add", {"n": 5}, idempotency_key="task-1/2/0")
    assert (first.text, second.text, second.is_error, second.attempts) == ("2", "7", False, 1)
    assert second.content == ({"type": "text", "text": "7"},)
    assert counter(server)["total"] == 7
    assert audit.of("tool.call")[1] == {
        "agent": AGENT,
        "tool": "counter",
        "name": "add",
        "arguments": arguments_digest({"n": 5}),
        "idempotency_key": "task-1/2/0",
        "outcome": "ok",
        "attempts": 1,
    }


async def test_a_call_outside_the_allow_list_is_refused_and_audited(
    server: MCPServer, url: str, gateways: list[McpToolGateway]
) -> None:
    audit = MemoryAudit()
    gateway = make(gateways, tool(url, allow=("add",)), audit=audit)
    await gateway.call("counter", "add", {"n": 3}, idempotency_key="k1")
    refused_before = REGISTRY.get_sample_value(
        "chorus_tool_calls_total",
        {"tool": "counter", "name": "(not allowed)", "outcome": "refused"},
    )

    with pytest.raises(
        ToolRefused,
        match=r"agent trading/risk-assessor: tool 'counter': "
        r"may not call 'cancel_all' \(allowed: add\)",
    ):
        await gateway.call("counter", "cancel_all", {}, idempotency_key="k2")
    with pytest.raises(ToolRefused, match=r"has no tool 'exchange' \(its tools: counter\)"):
        await gateway.call("exchange", "add", {"n": 1}, idempotency_key="k3")

    assert counter(server)["total"] == 3  # cancel_all never ran
    refusals = audit.of("tool.refused")
    assert [(r["tool"], r["name"], r["outcome"]) for r in refusals] == [
        ("counter", "cancel_all", "refused"),
        ("exchange", "add", "refused"),
    ]
    assert (
        REGISTRY.get_sample_value(
            "chorus_tool_calls_total",
            {"tool": "counter", "name": "(not allowed)", "outcome": "refused"},
        )
        == (refused_before or 0) + 1
    )


async def test_a_tool_error_is_a_result_and_not_retried(
    url: str, gateways: list[McpToolGateway]
) -> None:
    audit = MemoryAudit()
    sleeps = Sleeps()
    gateway = make(gateways, tool(url), audit=audit, sleep=sleeps)
    result = await gateway.call("counter", "fail", {}, idempotency_key="k")
    assert result.is_error and "the tool failed on purpose" in result.text
    assert (result.attempts, sleeps.delays) == (1, [])
    assert audit.of("tool.call")[0]["outcome"] == "error"


async def test_the_idempotency_key_and_the_bearer_token_reach_the_server(
    url: str, gateways: list[McpToolGateway], tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    gateway = make(gateways, tool(url, bearerTokenFile=str(token)))
    result = await gateway.call("counter", "whoami", {}, idempotency_key="task-9/3/1")
    assert result.text == "key=task-9/3/1 auth=Bearer s3cret"


async def test_a_call_longer_than_the_timeout_fails_with_a_timeout(
    url: str, gateways: list[McpToolGateway]
) -> None:
    audit = MemoryAudit()
    gateway = make(
        gateways, tool(url, timeoutSeconds=0.3), audit=audit, retry=RetryPolicy(attempts=1)
    )
    with pytest.raises(
        ToolTimeout, match=r"tool 'counter' call 'slow': timed out after 0.3s \(1 attempt\)"
    ):
        await gateway.call("counter", "slow", {"seconds": 5}, idempotency_key="k")
    assert audit.of("tool.call")[0]["outcome"] == "timeout"
    # the session survives a slow tool
    assert (await gateway.call("counter", "total", {}, idempotency_key="k2")).text == "0"


async def test_with_the_server_down_the_call_is_retried_with_backoff_then_fails(
    gateways: list[McpToolGateway],
) -> None:
    audit = MemoryAudit()
    sleeps = Sleeps()
    gateway = make(
        gateways,
        tool(f"http://127.0.0.1:{free_port()}/mcp", timeoutSeconds=5),
        audit=audit,
        sleep=sleeps,
        random=lambda: 0.0,
        retry=RetryPolicy(attempts=3, base_delay=0.2),
    )
    with pytest.raises(
        ToolUnavailable, match=r"tool 'counter' call 'add': unavailable: .*\(3 attempts\)"
    ) as caught:
        await gateway.call("counter", "add", {"n": 1}, idempotency_key="k")
    assert "ConnectError" in str(caught.value)
    assert sleeps.delays == [0.1, 0.2]
    assert audit.of("tool.call")[0]["outcome"] == "unavailable"
    with pytest.raises(ToolUnavailable, match="cannot list its tools"):
        await gateway.list_tools()


async def test_the_session_reconnects_after_the_server_restarts(
    gateways: list[McpToolGateway],
) -> None:
    port = free_port()
    gateway = make(gateways, tool(f"http://127.0.0.1:{port}/mcp"), retry=RetryPolicy(attempts=1))
    async with serve_http(build_server(), port):
        assert (await gateway.call("counter", "add", {"n": 4}, idempotency_key="a")).text == "4"
    with pytest.raises(ToolUnavailable):
        await gateway.call("counter", "add", {"n": 4}, idempotency_key="b")
    async with serve_http(build_server(), port):
        assert (await gateway.call("counter", "add", {"n": 1}, idempotency_key="c")).text == "1"


async def test_the_circuit_opens_after_failures_then_closes_after_the_cooldown(
    server: MCPServer, url: str, gateways: list[McpToolGateway]
) -> None:
    clock = Clock()
    audit = MemoryAudit()
    gateway = make(
        gateways,
        tool(url, timeoutSeconds=0.2),
        audit=audit,
        clock=clock,
        failure_threshold=2,
        cooldown=30.0,
        retry=RetryPolicy(attempts=1),
    )
    for key in ("s1", "s2"):
        with pytest.raises(ToolTimeout):
            await gateway.call("counter", "slow", {"seconds": 5}, idempotency_key=key)

    with pytest.raises(
        CircuitOpen, match=r"tool 'counter' call 'add': circuit open .*retry in 30.0s"
    ):
        await gateway.call("counter", "add", {"n": 1}, idempotency_key="a1")
    assert counter(server)["calls"] == 0  # failed fast: the server never saw it
    assert audit.of("tool.call")[-1]["outcome"] == "circuit_open"

    clock.now += 30.0
    assert (await gateway.call("counter", "add", {"n": 1}, idempotency_key="a2")).text == "1"
    assert gateway.breaker("counter").state == "closed"


async def test_a_stdio_server_is_started_and_called(gateways: list[McpToolGateway]) -> None:
    stdio = RuntimeTool.model_validate(
        {
            "name": "counter",
            "command": [sys.executable, "-m", "tests.agents.tools.mcp_server"],
            "allow": ["add", "whoami"],
            "timeoutSeconds": 30,
        }
    )
    gateway = make(gateways, stdio)
    assert [t.name for t in await gateway.list_tools()] == ["add", "whoami"]
    assert (await gateway.call("counter", "add", {"n": 2}, idempotency_key="a")).text == "2"
    assert (await gateway.call("counter", "add", {"n": 3}, idempotency_key="b")).text == "5"
    whoami = await gateway.call("counter", "whoami", {}, idempotency_key="t/1/0")
    assert whoami.text == "key=t/1/0 auth=None"
