"""The maintenance MCP server: its tools, over streamable HTTP with the official client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import uvicorn
from chorus_agents.maintenance.cmms import FLEET, MaintenanceSystem
from chorus_agents.maintenance.cmms_server import (
    DEFAULT_STOCK,
    build_server,
    default_slots,
)
from chorus_agents.tools.base import IDEMPOTENCY_KEY_META
from mcp.client.client import Client
from mcp_types import RequestParamsMeta


@pytest.fixture
def served() -> Iterator[tuple[str, MaintenanceSystem]]:
    cmms = MaintenanceSystem(FLEET, DEFAULT_STOCK, default_slots(datetime(2026, 1, 5, tzinfo=UTC)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_server(cmms).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "maintenance MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", cmms
    server.should_exit = True
    thread.join(timeout=10)


def text(result: Any) -> str:
    return cast(str, result.content[0].text)


@pytest.mark.integration
def test_mcp_server_opens_work_orders_refuses_by_rule_and_reads_back(
    served: tuple[str, MaintenanceSystem],
) -> None:
    url, cmms = served
    key = cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-3/step-1"})
    opening = {
        "machine_id": "press-01",
        "failure_mode": "bearing_wear",
        "priority": "critical",
        "parts": ["bearing-6205"],
    }

    async def session() -> dict[str, Any]:
        async with Client(url) as client:
            out: dict[str, Any] = {}
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            opened = await client.call_tool("open_work_order", opening, meta=key)
            repeat = await client.call_tool("open_work_order", opening, meta=key)
            assert not opened.is_error and not repeat.is_error
            out["opened"], out["repeat"] = json.loads(text(opened)), json.loads(text(repeat))
            refused = await client.call_tool(
                "move_production_slot",
                {
                    "slot_id": "press-02-shift-1",
                    "machine_id": "press-01",
                    "start": "2026-01-06T06:00Z",
                },
            )
            out["refused"] = (refused.is_error, text(refused))
            machine = await client.call_tool("get_machine", {"machine_id": "press-01"})
            out["machine"] = json.loads(text(machine))
            return out

    out = asyncio.run(session())
    assert out["tools"] == {
        "list_machines",
        "get_machine",
        "list_work_orders",
        "open_work_order",
        "assign_work_order",
        "reserve_part",
        "schedule_work_order",
        "complete_work_order",
        "get_inventory",
        "get_production_schedule",
        "plan_production_slot",
        "move_production_slot",
    }
    assert out["opened"]["status"] == "open"
    assert out["opened"]["idempotency_key"] == "task-3/step-1"
    assert out["repeat"] == out["opened"]
    is_error, refusal = out["refused"]
    assert is_error and "critical_work_order" in refusal
    assert [o["work_order_id"] for o in out["machine"]["open_work_orders"]] == ["wo-000001"]
    assert cmms.schedule("press-02")[0].machine_id == "press-02"
    assert len(cmms.work_orders()) == 1
