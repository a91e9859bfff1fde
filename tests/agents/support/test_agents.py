"""The support agents on real Kafka with the real helpdesk MCP server, from their manifests.

Triggers are written to ``support.signals`` as ``chorus_flink.jobs.customer_service``
writes them (envelopes keyed by conversation id, :mod:`tests.agents.support.triggers`);
each test prefixes the domain topics with its namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.handler import Handler
from chorus_agents.support.billing import BillingSpecialist
from chorus_agents.support.crm import CUSTOMERS, Crm
from chorus_agents.support.escalation import EscalationAgent
from chorus_agents.support.front_line import FrontLineAgent
from chorus_agents.support.helpdesk_server import build_server
from chorus_agents.support.knowledge import ARTICLES, KnowledgeBase
from chorus_agents.support.orders import OrderSystem, sample_orders
from chorus_agents.support.technical import TechnicalSpecialist

from tests.agents.conftest import Connect, StartAgent, answer_text, namespace, user_text
from tests.agents.domain_harness import DECLINES_ALL, DomainRun, chain
from tests.agents.support.deploy import MANIFESTS
from tests.agents.support.triggers import angry_customer, at, long_wait, mild

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DOMAIN_TOPICS = ("support.signals", "support.escalations", "support.refunds", "support.guidance")
LOGIC: dict[str, Callable[[str], Handler]] = {
    "billing-specialist": lambda prefix: BillingSpecialist(topic_prefix=prefix),
    "technical-specialist": lambda prefix: TechnicalSpecialist(topic_prefix=prefix),
    "escalation": lambda prefix: EscalationAgent(topic_prefix=prefix),
    "front-line": lambda prefix: FrontLineAgent(),
}


class Helpdesk(DomainRun):
    """The CRM, the order system, their server, the four agents, the test's topics."""

    manifests = MANIFESTS
    signals_topic = "support.signals"
    timeout = 90

    def __init__(self, kafka: Any, ns: str, crm: Crm, orders: OrderSystem) -> None:
        super().__init__(kafka, ns)
        self.crm = crm
        self.orders = orders


StartHelpdesk = Callable[..., Awaitable[Helpdesk]]


@pytest.fixture
async def start_helpdesk(kafka: Any, start_agent: StartAgent) -> AsyncIterator[StartHelpdesk]:
    """Starts the helpdesk; ``orders_placed`` is the day the reference orders are dated from,
    ``scripts`` replaces Agents' model scripts (``{agent: script}``)."""
    async with AsyncExitStack() as stack:

        async def start(
            orders_placed: datetime | None = None, scripts: dict[str, str] | None = None
        ) -> Helpdesk:
            now = datetime.now(UTC)
            crm = Crm(CUSTOMERS)
            orders = OrderSystem(sample_orders(orders_placed or now), clock=lambda: now)
            found = Helpdesk(kafka, namespace(), crm, orders)
            servers = {"helpdesk": build_server(crm, KnowledgeBase(ARTICLES), orders)}
            await stack.enter_async_context(
                found.running(
                    start_agent,
                    topics=DOMAIN_TOPICS,
                    servers=servers,
                    logic=LOGIC,
                    scripts=scripts,
                )
            )
            return found

        yield start


def decisions(audit: list[dict[str, Any]], agent: str) -> list[dict[str, Any]]:
    return [r for r in audit if r["kind"] == "decision" and r["agent"].endswith(f"/{agent}")]


async def test_an_angry_customer_is_escalated_once_and_billing_refunds_the_order(
    start_helpdesk: StartHelpdesk,
) -> None:
    desk = await start_helpdesk()
    triggers = angry_customer("cust-002")
    desk.send(*triggers)

    records = await desk.until(
        lambda: len(found := desk.published("support.escalations")) == len(triggers) and found
    )
    first = triggers[0]["id"]
    (escalated,) = [r for r in records if r["action"] == "escalate"]
    assert escalated["incident"] == first  # the first trigger escalates; the rest join it
    assert (escalated["customer_id"], escalated["tier"]) == ("cust-002", "gold")
    assert (escalated["queue"], escalated["specialist"]) == ("billing", "billing-specialist")
    resolution = escalated["resolution"]
    assert (resolution["status"], resolution["order_id"], resolution["amount"]) == (
        "refunded",
        "ord-1002",
        249.0,
    )
    others = [r for r in records if r["incident"] != first]
    assert {r["action"] for r in others} == {"already_escalated"}
    assert {r["case_id"] for r in records} == {escalated["case_id"]}

    # the CRM: one case, with the billing queue, naming the incident
    (case,) = desk.crm.cases("cust-002")
    assert (case.case_id, case.status, case.queue) == (escalated["case_id"], "escalated", "billing")
    assert first in case.note
    # the order system: one refund, within the rules
    refund = desk.orders.refund_of("ord-1002")
    assert refund is not None and refund.refund_id == resolution["refund_id"]
    assert refund.idempotency_key == f"refund:{case.case_id}/1/0"  # the model's first call
    assert desk.orders.refund_of("ord-1003") is None
    (published,) = desk.published("support.refunds")
    assert published == resolution

    # the audit chain: from the refund back to the trigger
    audit = await desk.until(
        lambda: (
            (found := desk.audit())
            and len(decisions(found, "escalation")) == len(triggers)
            and found
        )
    )
    # the specialist's own decision (its model loop's answer is a decision record too)
    (refunded,) = [d for d in decisions(audit, "billing-specialist") if "action" in d["fields"]]
    assert refunded["fields"]["incident"] == first
    assert refunded["fields"]["refund_id"] == refund.refund_id
    steps = chain(audit, refunded)
    kinds = [(r["agent"].split("/")[1], r["kind"]) for r in steps]
    assert ("billing-specialist", "tool.call") in kinds
    assert ("billing-specialist", "message.received") in kinds
    assert ("escalation", "agent.call") in kinds
    assert ("escalation", "tool.call") in kinds  # the escalate_case before the call
    received = steps[-1]
    assert (received["agent"], received["kind"]) == (f"{desk.ns}/escalation", "event.received")
    assert received["fields"]["event_id"] == first
    assert received["fields"]["topic"] == desk.topic("support.signals")
    escalating = [d for d in decisions(audit, "escalation") if d["fields"]["action"] == "escalate"]
    assert [d["fields"]["incident"] for d in escalating] == [first]
    assert escalating[0]["fields"]["refund_id"] == refund.refund_id
    assert chain(audit, escalating[0])[-1]["id"] == received["id"]
    # the escalation itself was a CRM call with the incident's idempotency key
    calls = [r["fields"] for r in audit if r["kind"] == "tool.call"]
    assert {"name": "escalate_case", "idempotency_key": f"escalate:{first}"}.items() <= next(
        c for c in calls if c["name"] == "escalate_case"
    ).items()


async def test_a_refund_outside_the_rules_is_refused_citing_the_rule(
    start_helpdesk: StartHelpdesk,
) -> None:
    desk = await start_helpdesk(orders_placed=datetime.now(UTC) - timedelta(days=40))
    trigger = long_wait("conv-00004", "cust-004", at(600))
    desk.send(trigger)

    (record,) = await desk.until(lambda: desk.published("support.escalations"))
    assert (record["incident"], record["action"], record["queue"]) == (
        trigger["id"],
        "escalate",
        "billing",
    )
    resolution = record["resolution"]
    assert (resolution["status"], resolution["order_id"], resolution["rule"]) == (
        "refused",
        "ord-1005",
        "refund_window",
    )
    assert "refund window" in resolution["reason"]
    assert desk.orders.refund_of("ord-1005") is None
    (case,) = desk.crm.cases("cust-004")
    assert (case.status, case.queue) == ("escalated", "billing")  # left to the queue's people

    # an order not shipped yet: the billing specialist's model declines to refund it
    placed = long_wait("conv-00006", "cust-003", at(900))
    desk.send(placed)
    (declined,) = await desk.until(
        lambda: [r for r in desk.published("support.escalations") if r["incident"] == placed["id"]]
    )
    resolution = declined["resolution"]
    assert (resolution["status"], resolution["order_id"]) == ("declined", "ord-1004")
    assert resolution["answer"] == (
        "No refund: order ord-1004 has not shipped yet and can still be cancelled."
    )
    assert desk.orders.refund_of("ord-1004") is None


async def test_a_model_that_declines_refunds_nothing(start_helpdesk: StartHelpdesk) -> None:
    """An angry customer, another model (the spec's script replaced): the case is escalated
    all the same (code), the billing model is asked and declines, and nothing is refunded;
    the manifest's model refunds (above)."""
    desk = await start_helpdesk(scripts={"billing-specialist": DECLINES_ALL})
    trigger = long_wait("conv-00007", "cust-002", at(600))
    desk.send(trigger)

    (record,) = await desk.until(lambda: desk.published("support.escalations"))
    assert (record["action"], record["specialist"]) == ("escalate", "billing-specialist")
    resolution = record["resolution"]
    assert (resolution["status"], resolution["order_id"]) == ("declined", "ord-1002")
    assert resolution["answer"] == "none: I decline to act on this."
    assert desk.orders.refund_of("ord-1002") is None
    (published,) = desk.published("support.refunds")
    assert published == resolution


async def test_a_technical_problem_goes_to_the_technical_specialist(
    start_helpdesk: StartHelpdesk,
) -> None:
    desk = await start_helpdesk()
    desk.crm.log_contact("cust-003", "chat", "cannot sign in: the password reset link fails")
    trigger = long_wait("conv-00005", "cust-003", at(1200))
    desk.send(trigger)

    (record,) = await desk.until(lambda: desk.published("support.escalations"))
    assert (record["queue"], record["specialist"]) == ("technical", "technical-specialist")
    assert (record["resolution"]["status"], record["resolution"]["article_id"]) == (
        "article_sent",
        "kb-104",
    )
    contacts = desk.crm.contacts("cust-003")
    assert [c.channel for c in contacts] == ["chat", "email"]
    assert "kb-104" in contacts[-1].summary
    assert desk.published("support.guidance") == [record["resolution"]]
    assert desk.published("support.refunds") == []


async def test_a_quiet_run_leads_to_no_escalation(start_helpdesk: StartHelpdesk) -> None:
    desk = await start_helpdesk()
    quiet = mild("cust-005")
    desk.send(*quiet)

    def handled() -> list[dict[str, Any]]:
        records = desk.audit()
        done = [r for r in records if r["kind"] == "event.handled"]
        return records if len(done) >= len(quiet) else []

    audit = await desk.until(handled)
    assert {r["agent"] for r in audit if r["kind"] == "event.handled"} == {f"{desk.ns}/escalation"}
    for name in ("support.escalations", "support.refunds", "support.guidance"):
        assert desk.published(name) == [], name
    assert desk.crm.cases() == []
    assert all(desk.orders.refund_of(o.order_id) is None for o in desk.orders.orders("cust-005"))
    acting = {"agent.call", "tool.call", "tool.refused", "model.call", "decision"}
    assert [r for r in audit if r["kind"] in acting] == []


async def test_the_front_line_answers_a_question_from_the_knowledge_base(
    start_helpdesk: StartHelpdesk, caller: Connect
) -> None:
    desk = await start_helpdesk()
    host = desk.hosts["front-line"]
    assert host.card is not None
    connection = await caller(desk.ns)
    transport = connection.transport(host.card, host.card.supported_interfaces[0].url)

    async def ask(text: str) -> Any:
        request = SendMessageRequest(message=user_text(text, context_id=f"chat-{len(text)}"))
        return await asyncio.wait_for(transport.send_message(request), 60)

    answer = await ask("How do I reset my password?")
    text = answer_text(answer.task)
    assert text.startswith("Use 'forgot password' on the sign-in page")
    assert 'help article kb-104: "Resetting your password"' in text
    order = answer_text((await ask("Where is my order ord-1001?")).task)
    assert order == "Your order ord-1001 is shipped; its tracking number is TRK-88A1."

    audit = await desk.until(
        lambda: (found := desk.audit()) and len(decisions(found, "front-line")) >= 2 and found
    )
    calls = [
        r["fields"]["name"]
        for r in audit
        if r["kind"] == "tool.call" and r["agent"] == f"{desk.ns}/front-line"
    ]
    assert calls == ["search_articles", "get_article", "get_order"]
    (first, second) = decisions(audit, "front-line")
    assert first["task_id"] == answer.task.id and first["fields"]["text"] == text
    assert second["fields"]["outcome"] == "answer"
