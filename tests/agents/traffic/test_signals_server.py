"""The signals MCP server: its tools, over streamable HTTP with the official client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import uvicorn
from chorus_agents.tools.base import IDEMPOTENCY_KEY_META
from chorus_agents.traffic.signals import SignalControllers
from chorus_agents.traffic.signals_server import build_server
from mcp.client.client import Client
from mcp_types import RequestParamsMeta


@pytest.fixture
def served() -> Iterator[tuple[str, SignalControllers]]:
    signals = SignalControllers()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_server(signals).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "signals MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", signals
    server.should_exit = True
    thread.join(timeout=10)


def text(result: Any) -> str:
    return cast(str, result.content[0].text)


@pytest.mark.integration
def test_mcp_server_sets_timings_refuses_by_rule_and_reads_back(
    served: tuple[str, SignalControllers],
) -> None:
    url, signals = served
    key = cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-8/step-1"})

    async def session() -> dict[str, Any]:
        async with Client(url) as client:
            out: dict[str, Any] = {}
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            changed = await client.call_tool(
                "set_timing", {"intersection_id": "A2", "greens": {"east-west": 55}}, meta=key
            )
            assert not changed.is_error
            out["changed"] = json.loads(text(changed))
            refused = await client.call_tool(
                "set_timing", {"intersection_id": "A2", "greens": {"north-south": 60}}
            )
            out["refused"] = (refused.is_error, text(refused))
            neighbours = await client.call_tool("get_neighbour_timings", {"intersection_id": "A3"})
            out["neighbours"] = json.loads(text(neighbours))["timings"]
            return out

    out = asyncio.run(session())
    assert out["tools"] == {
        "get_timing",
        "get_neighbour_timings",
        "set_timing",
        "preempt_route",
        "clear_preemption",
        "list_preemptions",
    }
    assert out["changed"]["cycle_seconds"] == 95.0
    assert out["changed"]["idempotency_key"] == "task-8/step-1"
    is_error, refusal = out["refused"]
    assert is_error and "max_cycle" in refusal
    a2 = next(t for t in out["neighbours"] if t["intersection_id"] == "A2")
    assert [p["green_seconds"] for p in a2["phases"]] == [55.0, 30.0]
    assert signals.timing("A2").cycle_seconds == 95.0
