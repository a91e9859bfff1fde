"""The customer service back ends as one MCP server (official SDK, streamable HTTP or stdio).

    chorus mcp serve chorus_agents.support.helpdesk_server --port 8000  # streamable HTTP at /mcp
    python -m chorus_agents.support.helpdesk_server --port 8000        # streamable HTTP at /mcp
    python -m chorus_agents.support.helpdesk_server --transport stdio

Tools: the CRM's ``get_customer``, ``log_contact``, ``open_case``, ``escalate_case`` and
``close_case``; the knowledge base's ``search_articles`` and ``get_article``; the order
system's ``get_order``, ``list_orders`` and ``refund_order``. Agents are allow-listed per
tool, so one server serves the triage, knowledge and resolution agents alike. A refused
operation is a tool error (``isError``) whose text names the rule. The idempotency key is
taken from the call's ``_meta`` (``chorus/idempotency-key``), which the Chorus tool gateway
sets per call, or from the ``idempotency_key`` argument.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from chorus_agents.support.crm import CUSTOMERS, Case, Crm, CrmRefused
from chorus_agents.support.knowledge import ARTICLES, KnowledgeBase, KnowledgeRefused
from chorus_agents.support.orders import Order, OrderRefused, OrderSystem, Refund, sample_orders

IDEMPOTENCY_META = "chorus/idempotency-key"
Refusal = CrmRefused | KnowledgeRefused | OrderRefused


def _case(case: Case) -> dict[str, Any]:
    return {k: (str(v) if k == "status" else v) for k, v in asdict(case).items()}


def _order(order: Order) -> dict[str, Any]:
    out = asdict(order)
    out["status"] = str(order.status)
    out["placed"] = order.placed.isoformat(timespec="seconds")
    return out


def _refund(refund: Refund) -> dict[str, Any]:
    return {**asdict(refund), "time": refund.time.isoformat(timespec="seconds")}


def _meta_key(ctx: Context[Any, Any] | None) -> str | None:
    """The idempotency key the caller put in the request's ``_meta``, if any."""
    if ctx is None:
        return None
    meta = ctx.request_context.meta or {}
    value = meta.get(IDEMPOTENCY_META)
    return str(value) if value is not None else None


def _refused(what: str, refused: Refusal) -> ToolError:
    return ToolError(f"{what} refused ({refused.rule}): {refused}")


def build_server(crm: Crm, knowledge: KnowledgeBase, orders: OrderSystem) -> MCPServer[Any]:
    """An MCP server whose tools act on the CRM, the knowledge base and the order system."""
    server: MCPServer[Any] = MCPServer(
        "helpdesk",
        instructions="Customer service back ends: CRM, knowledge base, orders and refunds.",
    )

    @server.tool(description="A customer: tier, contact history and open cases.")
    def get_customer(customer_id: str) -> dict[str, Any]:
        try:
            return {
                **{k: str(v) for k, v in asdict(crm.customer(customer_id)).items()},
                "contacts": [asdict(c) for c in crm.contacts(customer_id)],
                "open_cases": [_case(c) for c in crm.cases(customer_id, open_only=True)],
            }
        except CrmRefused as refused:
            raise _refused("lookup", refused) from refused

    @server.tool(description="Add a contact (channel: chat, email, phone) to a customer's history.")
    def log_contact(
        customer_id: str,
        channel: str,
        summary: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return asdict(crm.log_contact(customer_id, channel, summary, idempotency_key=key))
        except CrmRefused as refused:
            raise _refused("contact", refused) from refused

    @server.tool(description="Open a case for a customer with a subject.")
    def open_case(
        customer_id: str,
        subject: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return _case(crm.open_case(customer_id, subject, idempotency_key=key))
        except CrmRefused as refused:
            raise _refused("case", refused) from refused

    @server.tool(
        description=(
            "Escalate an open case to a specialist queue (billing, technical, retention) "
            "with a reason. Closed or already escalated cases are refused."
        )
    )
    def escalate_case(
        case_id: str,
        queue: str,
        reason: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return _case(crm.escalate(case_id, queue, reason, idempotency_key=key))
        except CrmRefused as refused:
            raise _refused("escalation", refused) from refused

    @server.tool(description="Close a case with its resolution.")
    def close_case(
        case_id: str,
        resolution: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return _case(crm.close(case_id, resolution, idempotency_key=key))
        except CrmRefused as refused:
            raise _refused("closing", refused) from refused

    @server.tool(description="Search help articles by keywords; best match first, at most limit.")
    def search_articles(query: str, limit: int = 5) -> dict[str, Any]:
        try:
            return {"hits": [asdict(h) for h in knowledge.search(query, limit)]}
        except KnowledgeRefused as refused:
            raise _refused("search", refused) from refused

    @server.tool(description="A help article's full text.")
    def get_article(article_id: str) -> dict[str, Any]:
        try:
            return asdict(knowledge.article(article_id))
        except KnowledgeRefused as refused:
            raise _refused("lookup", refused) from refused

    @server.tool(description="An order: items, total, status, tracking, and its refund if any.")
    def get_order(order_id: str) -> dict[str, Any]:
        try:
            refund = orders.refund_of(order_id)
            return {
                **_order(orders.order(order_id)),
                "refund": _refund(refund) if refund is not None else None,
            }
        except OrderRefused as refused:
            raise _refused("lookup", refused) from refused

    @server.tool(description="A customer's orders.")
    def list_orders(customer_id: str) -> dict[str, Any]:
        return {"orders": [_order(o) for o in orders.orders(customer_id)]}

    @server.tool(
        description=(
            "Refund an order: within 30 days of purchase, up to its total, once per order."
        )
    )
    def refund_order(
        order_id: str,
        amount: float,
        reason: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = idempotency_key or _meta_key(ctx)
        try:
            return _refund(orders.refund(order_id, amount, reason, idempotency_key=key))
        except OrderRefused as refused:
            raise _refused("refund", refused) from refused

    return server


def create_server() -> MCPServer[Any]:
    """The reference customers, articles and orders (from today): what ``chorus mcp serve`` runs."""
    return build_server(
        Crm(CUSTOMERS),
        KnowledgeBase(ARTICLES),
        OrderSystem(sample_orders(datetime.now(UTC))),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chorus_agents.support.helpdesk_server")
    parser.add_argument("--transport", choices=("http", "stdio"), default="http")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = create_server()
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    app = server.streamable_http_app(host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
