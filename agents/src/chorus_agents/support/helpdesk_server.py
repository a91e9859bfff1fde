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

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from chorus_agents import mcpserver
from chorus_agents.mcpserver import refusals
from chorus_agents.support.crm import CUSTOMERS, Case, Crm, CrmRefused
from chorus_agents.support.knowledge import ARTICLES, KnowledgeBase, KnowledgeRefused
from chorus_agents.support.orders import Order, OrderRefused, OrderSystem, Refund, sample_orders

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


def build_server(crm: Crm, knowledge: KnowledgeBase, orders: OrderSystem) -> MCPServer[Any]:
    """An MCP server whose tools act on the CRM, the knowledge base and the order system."""
    server: MCPServer[Any] = MCPServer(
        "helpdesk",
        instructions="Customer service back ends: CRM, knowledge base, orders and refunds.",
    )

    @server.tool(description="A customer: tier, contact history and open cases.")
    def get_customer(customer_id: str) -> dict[str, Any]:
        with refusals("lookup", CrmRefused):
            return {
                **{k: str(v) for k, v in asdict(crm.customer(customer_id)).items()},
                "contacts": [asdict(c) for c in crm.contacts(customer_id)],
                "open_cases": [_case(c) for c in crm.cases(customer_id, open_only=True)],
            }

    @server.tool(description="Add a contact (channel: chat, email, phone) to a customer's history.")
    def log_contact(
        customer_id: str,
        channel: str,
        summary: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("contact", CrmRefused):
            return asdict(crm.log_contact(customer_id, channel, summary, idempotency_key=key))

    @server.tool(description="Open a case for a customer with a subject.")
    def open_case(
        customer_id: str,
        subject: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("case", CrmRefused):
            return _case(crm.open_case(customer_id, subject, idempotency_key=key))

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
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("escalation", CrmRefused):
            return _case(crm.escalate(case_id, queue, reason, idempotency_key=key))

    @server.tool(description="Close a case with its resolution.")
    def close_case(
        case_id: str,
        resolution: str,
        idempotency_key: str | None = None,
        ctx: Context[Any, Any] | None = None,
    ) -> dict[str, Any]:
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("closing", CrmRefused):
            return _case(crm.close(case_id, resolution, idempotency_key=key))

    @server.tool(description="Search help articles by keywords; best match first, at most limit.")
    def search_articles(query: str, limit: int = 5) -> dict[str, Any]:
        with refusals("search", KnowledgeRefused):
            return {"hits": [asdict(h) for h in knowledge.search(query, limit)]}

    @server.tool(description="A help article's full text.")
    def get_article(article_id: str) -> dict[str, Any]:
        with refusals("lookup", KnowledgeRefused):
            return asdict(knowledge.article(article_id))

    @server.tool(description="An order: items, total, status, tracking, and its refund if any.")
    def get_order(order_id: str) -> dict[str, Any]:
        with refusals("lookup", OrderRefused):
            refund = orders.refund_of(order_id)
            return {
                **_order(orders.order(order_id)),
                "refund": _refund(refund) if refund is not None else None,
            }

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
        key = mcpserver.idempotency_key(idempotency_key, ctx)
        with refusals("refund", OrderRefused):
            return _refund(orders.refund(order_id, amount, reason, idempotency_key=key))

    return server


def create_server() -> MCPServer[Any]:
    """The reference customers, articles and orders (from today): what ``chorus mcp serve`` runs."""
    return build_server(
        Crm(CUSTOMERS),
        KnowledgeBase(ARTICLES),
        OrderSystem(sample_orders(datetime.now(UTC))),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m``: serves :func:`create_server` (:func:`chorus_agents.mcpserver.main`)."""
    return mcpserver.main(
        create_server, argv, prog="python -m chorus_agents.support.helpdesk_server"
    )


if __name__ == "__main__":
    raise SystemExit(main())
