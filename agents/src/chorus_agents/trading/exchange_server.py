"""The exchange as an MCP server (official SDK, streamable HTTP or stdio).

    chorus mcp serve chorus_agents.trading.exchange_server --port 8000  # streamable HTTP at /mcp
    python -m chorus_agents.trading.exchange_server --port 8000        # the same
    python -m chorus_agents.trading.exchange_server --transport stdio

Tools: ``get_quote``, ``place_order``, ``cancel_order``, ``get_positions`` for traders,
and ``restrict_symbol`` / ``lift_restriction`` for compliance. A refused order is a tool
error (``isError``) whose text names the rule, so the model or handler sees why. The
idempotency key is taken from the call's ``_meta`` (``chorus/idempotency-key``), which the
Chorus tool gateway sets per call, or from the ``idempotency_key`` argument.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from chorus_agents.trading.exchange import Exchange, Limits, Order, OrderRejected

IDEMPOTENCY_META = "chorus/idempotency-key"
DEFAULT_PRICES: Mapping[str, float] = {
    "ACME": 120.0,
    "GLOBX": 48.5,
    "INITech": 310.0,
    "UMBR": 75.25,
}


def _order(order: Order) -> dict[str, Any]:
    return {k: (str(v) if k in ("side", "status") else v) for k, v in asdict(order).items()}


def _meta_key(ctx: Context[Any, Any] | None) -> str | None:
    """The idempotency key the caller put in the request's ``_meta``, if any."""
    if ctx is None:
        return None
    meta = ctx.request_context.meta or {}
    value = meta.get(IDEMPOTENCY_META)
    return str(value) if value is not None else None


def build_server(exchange: Exchange) -> MCPServer[Any]:
    """An MCP server whose tools act on ``exchange``."""
    server: MCPServer[Any] = MCPServer(
        "exchange", instructions="A simulated exchange with limits and compliance."
    )

    @server.tool(description="The current bid, ask and last price of a symbol.")
    def get_quote(symbol: str) -> dict[str, Any]:
        try:
            return asdict(exchange.quote(symbol))
        except OrderRejected as refused:
            raise ToolError(str(refused)) from refused

    @server.tool(
        description=(
            "Place an order. side is buy or sell; omit limit_price for a market order. "
            "Refused orders fail with the rule they broke."
        )
    )
    def place_order(
        symbol: str,
        side: str,
        quantity: int,
        limit_price: float | None = None,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            order = exchange.place_order(symbol, side, quantity, limit_price, idempotency_key=key)
        except OrderRejected as refused:
            raise ToolError(f"order rejected ({refused.rule}): {refused}") from refused
        return _order(order)

    @server.tool(description="Cancel a resting order by id.")
    def cancel_order(order_id: str) -> dict[str, Any]:
        try:
            return _order(exchange.cancel_order(order_id))
        except OrderRejected as refused:
            raise ToolError(f"cancel rejected ({refused.rule}): {refused}") from refused

    @server.tool(description="Every symbol's position (bought minus sold).")
    def get_positions() -> dict[str, int]:
        return exchange.positions()

    @server.tool(description="Compliance: refuse new orders in a symbol, with a reason.")
    def restrict_symbol(symbol: str, reason: str) -> dict[str, Any]:
        exchange.restrict(symbol, reason)
        return {"symbol": symbol, "restricted": True, "reason": reason}

    @server.tool(description="Compliance: lift a symbol's restriction.")
    def lift_restriction(symbol: str) -> dict[str, Any]:
        exchange.lift(symbol)
        return {"symbol": symbol, "restricted": False}

    return server


def create_server() -> MCPServer[Any]:
    """The exchange with the default prices and limits: what ``chorus mcp serve`` runs."""
    return build_server(Exchange(DEFAULT_PRICES, Limits()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chorus_agents.trading.exchange_server")
    parser.add_argument("--transport", choices=("http", "stdio"), default="http")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-position", type=int, default=Limits.max_position)
    args = parser.parse_args(argv)
    exchange = Exchange(DEFAULT_PRICES, Limits(max_position=args.max_position))
    server = build_server(exchange)
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    app = server.streamable_http_app(host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
