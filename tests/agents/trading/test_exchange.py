"""The simulated exchange: each rule refuses what it should, and its MCP server serves it."""

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
from chorus_agents.trading.exchange import Exchange, Limits, OrderRejected, OrderStatus
from chorus_agents.trading.exchange_server import build_server
from mcp.client.client import Client
from mcp_types import RequestParamsMeta

PRICES = {"ACME": 100.0, "GLOBX": 50.0}


def exchange(**limits: float) -> Exchange:
    return Exchange(PRICES, Limits(**limits), clock=lambda: "t")  # type: ignore[arg-type]


@pytest.mark.unit
def test_market_buy_fills_at_the_ask_and_moves_the_position() -> None:
    ex = exchange(half_spread=0.01)
    order = ex.place_order("ACME", "buy", 10)
    assert order.status is OrderStatus.FILLED
    assert order.fill_price == pytest.approx(101.0)
    assert ex.positions() == {"ACME": 10, "GLOBX": 0}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"symbol": "NOPE", "side": "buy", "quantity": 1}, "unknown_symbol"),
        ({"symbol": "ACME", "side": "hold", "quantity": 1}, "side"),
        ({"symbol": "ACME", "side": "buy", "quantity": 0}, "quantity"),
        ({"symbol": "ACME", "side": "buy", "quantity": 1001}, "max_order_quantity"),
        ({"symbol": "ACME", "side": "buy", "quantity": 10, "limit_price": 120.0}, "price_collar"),
        ({"symbol": "ACME", "side": "buy", "quantity": 900}, "max_order_notional"),
    ],
)
def test_an_order_breaking_a_rule_is_refused_naming_it(kwargs: dict[str, Any], rule: str) -> None:
    ex = exchange(max_order_notional=50_000.0)
    with pytest.raises(OrderRejected) as refused:
        ex.place_order(**kwargs)
    assert refused.value.rule == rule
    assert ex.positions() == {"ACME": 0, "GLOBX": 0}


@pytest.mark.unit
def test_position_limit_counts_resting_orders_both_ways() -> None:
    ex = exchange(max_position=100)
    ex.place_order("ACME", "buy", 60)
    ex.place_order("ACME", "buy", 30, limit_price=95.0)  # rests: not marketable
    with pytest.raises(OrderRejected) as refused:
        ex.place_order("ACME", "buy", 20)
    assert refused.value.rule == "max_position"
    assert "would be 110" in str(refused.value)
    ex.place_order("ACME", "sell", 90)  # back to 0 with the resting buy
    assert ex.positions()["ACME"] == -30


@pytest.mark.unit
def test_compliance_restriction_vetoes_orders_until_lifted() -> None:
    ex = exchange()
    ex.restrict("GLOBX", "flash crash under review")
    with pytest.raises(OrderRejected, match="flash crash under review") as refused:
        ex.place_order("GLOBX", "sell", 1)
    assert refused.value.rule == "compliance"
    ex.lift("GLOBX")
    assert ex.place_order("GLOBX", "sell", 1).status is OrderStatus.FILLED


@pytest.mark.unit
def test_resting_limit_order_fills_when_the_price_reaches_it_or_is_cancelled() -> None:
    ex = exchange(half_spread=0.0)
    low = ex.place_order("ACME", "buy", 5, limit_price=95.0)
    other = ex.place_order("ACME", "buy", 5, limit_price=92.0)
    assert low.status is OrderStatus.OPEN
    filled = ex.set_price("ACME", 94.0)
    assert [o.order_id for o in filled] == [low.order_id]
    assert filled[0].fill_price == pytest.approx(94.0)
    assert ex.cancel_order(other.order_id).status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected, match="not open"):
        ex.cancel_order(low.order_id)
    assert ex.positions()["ACME"] == 5


@pytest.mark.unit
def test_the_same_idempotency_key_fills_once() -> None:
    ex = exchange()
    first = ex.place_order("ACME", "buy", 10, idempotency_key="task-1/step-2")
    again = ex.place_order("ACME", "buy", 10, idempotency_key="task-1/step-2")
    assert again == first
    assert ex.positions()["ACME"] == 10


# --- over MCP -------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, Exchange]]:
    ex = exchange()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_server(ex).streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "exchange MCP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", ex
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.integration
def test_mcp_server_lists_tools_places_orders_and_reports_refusals(
    served: tuple[str, Exchange],
) -> None:
    url, ex = served

    async def session() -> tuple[set[str], dict[str, Any], str, dict[str, Any]]:
        async with Client(url) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            placed = await client.call_tool(
                "place_order",
                {"symbol": "ACME", "side": "buy", "quantity": 10},
                meta=cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-9/step-1"}),
            )
            repeat = await client.call_tool(
                "place_order",
                {"symbol": "ACME", "side": "buy", "quantity": 10},
                meta=cast(RequestParamsMeta, {IDEMPOTENCY_KEY_META: "task-9/step-1"}),
            )
            assert not placed.is_error and not repeat.is_error
            refused = await client.call_tool(
                "place_order", {"symbol": "ACME", "side": "buy", "quantity": 5000}
            )
            assert refused.is_error
            positions = await client.call_tool("get_positions", {})
            return (
                tools,
                json.loads(placed.content[0].text),  # type: ignore[union-attr]
                refused.content[0].text,  # type: ignore[union-attr]
                json.loads(positions.content[0].text),  # type: ignore[union-attr]
            )

    tools, placed, refusal, positions = asyncio.run(session())
    assert tools == {
        "get_quote",
        "place_order",
        "cancel_order",
        "get_positions",
        "list_orders",
        "restrict_symbol",
        "lift_restriction",
    }
    assert placed["status"] == "filled"
    assert placed["idempotency_key"] == "task-9/step-1"
    assert "max_order_quantity" in refusal
    assert positions == {"ACME": 10, "GLOBX": 0}
    assert ex.positions()["ACME"] == 10
