"""``technical-specialist``: sends an escalated customer the help article for their problem.

A code-defined agent answering A2A messages, with the same request as
:mod:`~chorus_agents.support.billing`::

    {"request_id", "incident", "case_id", "customer_id", "tier"?, "reason"?}

It reads the customer's contact history (``get_customer``), searches the knowledge base
with the latest contact's summary (``search_articles``), and sends the best article by
logging an email contact (``log_contact``, idempotency key ``contact:<case_id>``). The
outcome, published on ``support.guidance`` (key: the customer id), audited as a
``decision`` and answered as a data part::

    {"request_id", "incident", "case_id", "customer_id",
     "status": "article_sent"|"no_article", "article_id"?, "title"?, "query"}
"""

from __future__ import annotations

from typing import Any

from chorus_agents.handler import Context, Handler, Incoming, Reply
from chorus_agents.support.common import (
    GUIDANCE,
    HELPDESK,
    SupportError,
    request_json,
    tool_json,
)


class TechnicalSpecialist(Handler):
    """The ``technical-specialist`` agent; see the module docstring.

    ``topic_prefix`` is put before every domain topic name (tests that share a broker;
    see :func:`chorus_agents.dev.config.runtime_config_for`).
    """

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.guidance = topic_prefix + GUIDANCE

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        request = request_json(message.text, message.data, agent=ctx.agent)
        try:
            case_id = str(request["case_id"])
            customer_id = str(request["customer_id"])
        except KeyError as exc:
            raise SupportError(f"agent {ctx.agent}: a request without {exc}") from None
        customer = tool_json(
            await ctx.tools.call(HELPDESK, "get_customer", {"customer_id": customer_id})
        )
        contacts = customer.get("contacts") or []
        query = str(contacts[-1].get("summary", "")) if contacts else ""
        query = query or str(request.get("reason") or "account")
        outcome: dict[str, Any] = {
            "request_id": request.get("request_id"),
            "incident": request.get("incident"),
            "case_id": case_id,
            "customer_id": customer_id,
            "query": query,
            "status": "no_article",
        }
        found = await ctx.tools.call(HELPDESK, "search_articles", {"query": query, "limit": 1})
        hits = [] if found.is_error else tool_json(found).get("hits") or []
        if hits:
            article_id, title = str(hits[0]["article_id"]), str(hits[0]["title"])
            tool_json(
                await ctx.tools.call(
                    HELPDESK,
                    "log_contact",
                    {
                        "customer_id": customer_id,
                        "channel": "email",
                        "summary": f"case {case_id}: sent help article {article_id} ({title})",
                    },
                    idempotency_key=f"contact:{case_id}",
                )
            )
            outcome.update(status="article_sent", article_id=article_id, title=title)
        ctx.publish(self.guidance, outcome, key=customer_id)
        ctx.audit.record(
            "decision",
            action="send_article",
            incident=outcome["incident"],
            case_id=case_id,
            customer_id=customer_id,
            status=outcome["status"],
            article_id=outcome.get("article_id"),
        )
        return Reply(text=f"case {case_id}: {outcome['status']}", data=outcome)
