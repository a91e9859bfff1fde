"""The exchange as an MCP server (official SDK, streamable HTTP or stdio).

    chorus mcp serve chorus_agents.trading.exchange_server --port 8000  # streamable HTTP at /mcp
    python -m chorus_agents.trading.exchange_server --port 8000        # the same
    python -m chorus_agents.trading.exchange_server --transport stdio

Tools: ``get_quote``, ``place_order``, ``cancel_order``, ``get_positions``, ``list_orders``
for traders, and ``restrict_symbol`` / ``lift_restriction`` for compliance. A refused order
is a tool error (``isError``) whose text names the rule, so the model or handler sees why.
The idempotency key is taken from the call's ``_meta`` (``chorus/idempotency-key``), which
the Chorus tool gateway sets per call, or from the ``idempotency_key`` argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from chorus_agents import mcpserver
from chorus_agents.mcpserver import refusals
from chorus_agents.trading.exchange import Exchange, Limits, Order, OrderRejected

DEFAULT_PRICES: Mapping[str, float] = {
    "ACME": 120.0,
    "GLOBX": 48.5,
    "INITech": 310.0,
    "UMBR": 75.25,
}


def _order(order: Order) -> dict[str, Any]:
    return {k: (str(v) if k in ("side", "status") else v) for k, v in asdict(order).items()}


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
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("order", OrderRejected, verb="rejected"):
            order = exchange.place_order(symbol, side, quantity, limit_price, idempotency_key=key)
        return _order(order)

    @server.tool(description="Cancel a resting order by id.")
    def cancel_order(order_id: str) -> dict[str, Any]:
        with refusals("cancel", OrderRejected, verb="rejected"):
            return _order(exchange.cancel_order(order_id))

    @server.tool(description="Every symbol's position (bought minus sold).")
    def get_positions() -> dict[str, int]:
        return exchange.positions()

    @server.tool(description="Every order the exchange accepted, by id, with its idempotency key.")
    def list_orders() -> dict[str, Any]:
        return {"orders": [_order(order) for order in exchange.orders()]}

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
    """``python -m``: serves the exchange (:func:`chorus_agents.mcpserver.serve`), with
    ``--max-position`` over the default limits."""
    parser = mcpserver.argument_parser("python -m chorus_agents.trading.exchange_server")
    parser.add_argument("--max-position", type=int, default=Limits.max_position)
    args = parser.parse_args(argv)
    exchange = Exchange(DEFAULT_PRICES, Limits(max_position=args.max_position))
    return mcpserver.serve(build_server(exchange), args)


if __name__ == "__main__":
    raise SystemExit(main())
