"""The helpdesk MCP server: its tools, over streamable HTTP with the official client."""

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
from chorus_agents.support.crm import CUSTOMERS, Crm
from chorus_agents.support.helpdesk_server import build_server
from chorus_agents.support.knowledge import ARTICLES, KnowledgeBase
from chorus_agents.support.orders import OrderSystem, sample_orders
from chorus_agents.tools.base import IDEMPOTENCY_KEY_META
from mcp.client.client import Client
from mcp_types import RequestParamsMeta

TODAY = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def served() -> Iterator[tuple[str, Crm, OrderSystem]]:
    crm = Crm(CUSTOMERS)
    orders = OrderSystem(sample_orders(TODAY), clock=lambda: TODAY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_server(crm, KnowledgeBase(ARTICLES), orders).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "helpdesk MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", crm, orders
    server.should_exit = True
    thread.join(timeout=10)


def text(result: Any) -> str:
    return cast(str, result.content[0].text)


@pytest.mark.integration
def test_mcp_server_refunds_escalates_refuses_by_rule_and_reads_back(
    served: tuple[str, Crm, OrderSystem],
) -> None:
    url, crm, orders = served
    key = cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-5/step-2"})
    refund = {"order_id": "ord-1002", "amount": 100.0, "reason": "late"}

    async def session() -> dict[str, Any]:
        async with Client(url) as client:
            out: dict[str, Any] = {}
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            first = await client.call_tool("refund_order", refund, meta=key)
            again = await client.call_tool("refund_order", refund, meta=key)
            assert not first.is_error and not again.is_error
            out["refund"], out["again"] = json.loads(text(first)), json.loads(text(again))
            second = await client.call_tool("refund_order", {**refund, "amount": 1.0})
            old = await client.call_tool("refund_order", {**refund, "order_id": "ord-1003"})
            out["refused"] = [(r.is_error, text(r)) for r in (second, old)]
            case = json.loads(
                text(
                    await client.call_tool(
                        "open_case", {"customer_id": "cust-002", "subject": "late"}
                    )
                )
            )
            await client.call_tool("close_case", {"case_id": case["case_id"], "resolution": "ok"})
            escalation = await client.call_tool(
                "escalate_case", {"case_id": case["case_id"], "queue": "billing", "reason": "x"}
            )
            out["escalation"] = (escalation.is_error, text(escalation))
            order = await client.call_tool("get_order", {"order_id": "ord-1002"})
            out["order"] = json.loads(text(order))
            hits = await client.call_tool("search_articles", {"query": "refund policy"})
            out["hits"] = json.loads(text(hits))["hits"]
            return out

    out = asyncio.run(session())
    assert out["tools"] == {
        "get_customer",
        "log_contact",
        "open_case",
        "escalate_case",
        "close_case",
        "search_articles",
        "get_article",
        "get_order",
        "list_orders",
        "refund_order",
    }
    assert out["refund"]["amount"] == 100.0
    assert out["refund"]["idempotency_key"] == "task-5/step-2"
    assert out["again"] == out["refund"]
    assert [(error, "one_refund_per_order" in t) for error, t in out["refused"][:1]] == [
        (True, True)
    ]
    assert out["refused"][1][0] and "refund_window" in out["refused"][1][1]
    assert out["escalation"][0] and "case_closed" in out["escalation"][1]
    assert out["order"]["refund"]["refund_id"] == out["refund"]["refund_id"]
    assert out["hits"][0]["article_id"] == "kb-101"
    assert orders.refund_of("ord-1002") is not None and orders.refund_of("ord-1003") is None
    assert [c.status for c in crm.cases("cust-002")] == ["closed"]
