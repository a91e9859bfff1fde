"""The clinical MCP server: its tools, over streamable HTTP with the official client."""

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
from chorus_agents.icu.clinical_server import build_server
from chorus_agents.icu.devices import DeviceGateway
from chorus_agents.icu.ehr import PATIENTS, Ehr
from chorus_agents.tools.base import IDEMPOTENCY_KEY_META
from mcp.client.client import Client
from mcp_types import RequestParamsMeta


@pytest.fixture
def served() -> Iterator[tuple[str, Ehr, DeviceGateway]]:
    ehr = Ehr(PATIENTS)
    devices = DeviceGateway(p.patient_id for p in PATIENTS)
    devices.observe("pt-002", "spo2", 88, "2026-01-05T00:00:00Z")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_server(ehr, devices).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "clinical MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", ehr, devices
    server.should_exit = True
    thread.join(timeout=10)


def text(result: Any) -> str:
    return cast(str, result.content[0].text)


@pytest.mark.integration
def test_mcp_server_orders_refuses_by_rule_and_reads_back(
    served: tuple[str, Ehr, DeviceGateway],
) -> None:
    url, ehr, devices = served
    key = cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-2/step-4"})
    meropenem = {"patient_id": "pt-002", "drug": "meropenem", "dose": 1.0, "frequency": "q8h"}

    async def session() -> dict[str, Any]:
        async with Client(url) as client:
            out: dict[str, Any] = {}
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            first = await client.call_tool("order_medication", meropenem, meta=key)
            again = await client.call_tool("order_medication", meropenem, meta=key)
            assert not first.is_error and not again.is_error
            out["order"], out["again"] = json.loads(text(first)), json.loads(text(again))
            allergic = await client.call_tool(
                "order_medication",
                {"patient_id": "pt-002", "drug": "piperacillin-tazobactam", "dose": 4.5},
            )
            out["refused"] = (allergic.is_error, text(allergic))
            patient = await client.call_tool("get_patient", {"patient_id": "pt-002"})
            out["patient"] = json.loads(text(patient))
            vitals = await client.call_tool("get_latest_vitals", {"patient_id": "pt-002"})
            out["vitals"] = json.loads(text(vitals))
            interval = await client.call_tool(
                "set_monitoring_interval", {"patient_id": "pt-002", "seconds": 5}
            )
            out["interval"] = (interval.is_error, text(interval))
            return out

    out = asyncio.run(session())
    assert out["tools"] == {
        "get_patient",
        "list_medication_orders",
        "order_medication",
        "hold_medication",
        "discontinue_medication",
        "get_latest_vitals",
        "list_alarms",
        "acknowledge_alarm",
        "set_monitoring_interval",
        "get_vitals_feed_status",
    }
    assert out["order"]["status"] == "active"
    assert out["order"]["idempotency_key"] == "task-2/step-4"
    assert out["again"] == out["order"]
    assert out["refused"][0] and "allergy" in out["refused"][1]
    assert [o["drug"] for o in out["patient"]["medication_orders"]] == ["meropenem"]
    assert out["vitals"]["vitals"]["spo2"]["value"] == 88
    assert out["interval"][0] and "interval_bounds" in out["interval"][1]
    assert len(ehr.orders("pt-002")) == 1
    assert devices.interval("pt-002") == 60
