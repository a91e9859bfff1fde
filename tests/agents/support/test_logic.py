"""The support agents' decisions without a broker: triggers, routing, orders, the script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chorus_agents.models import ChatMessage, ModelRequest, ToolCall, ToolSpec
from chorus_agents.models.scripted import ScriptedModel
from chorus_agents.support.billing import latest_order, prompt, refund_key
from chorus_agents.support.common import Trigger, refusal_rule
from chorus_agents.support.escalation import escalated_case, queue_for

from tests.agents.spec_models import spec_script
from tests.agents.support.triggers import angry_customer, mild, repeat_contact, sentiment_drop
from tests.agents.support.triggers import at as time_at

pytestmark = pytest.mark.unit


def test_triggers_parse_from_the_job_envelopes() -> None:
    first = Trigger.parse(angry_customer()[2])
    assert first is not None
    assert (first.kind, first.conversation_id, first.customer_id) == (
        "sentiment_drop",
        "conv-00007",
        "cust-002",
    )
    assert first.id == "sentiment_drop:conv-00007:2026-01-05T10:05:00.000Z:0-41"
    assert first.reasons == ("below_floor",)
    assert Trigger.parse({"id": "x", "kind": "long_wait", "subject": "c", "data": {}}) is None
    assert Trigger.parse(b"not json") is None


def test_the_angry_customer_is_actionable_and_mild_triggers_are_not() -> None:
    assert all(Trigger.parse(t).actionable for t in angry_customer())  # type: ignore[union-attr]
    assert not any(Trigger.parse(t).actionable for t in mild())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("trend", "reason", "actionable"),
    [
        (-0.6, "below_floor", True),
        (-0.3, "trend_drop", True),  # fell into unhappiness, though above the job's floor
        (-0.2, "trend_drop", False),
        (-0.55, "trend_drop,below_floor", True),
    ],
)
def test_a_sentiment_drop_is_actionable_below_the_floor_or_when_unhappy(
    trend: float, reason: str, actionable: bool
) -> None:
    value = sentiment_drop(
        "c", "u", time_at(0), sentiment=-0.5, trend=trend, previous=0.4, reason=reason, offset=1
    )
    trigger = Trigger.parse(value)
    assert trigger is not None and trigger.actionable is actionable


def test_a_repeat_contact_is_actionable_within_the_hour() -> None:
    soon = Trigger.parse(repeat_contact("c2", "u", time_at(3599), "c1", time_at(0)))
    later = Trigger.parse(repeat_contact("c2", "u", time_at(3600), "c1", time_at(0)))
    assert soon is not None and soon.actionable
    assert later is not None and not later.actionable


def test_escalations_go_to_billing_unless_the_history_speaks_of_a_technical_problem() -> None:
    assert queue_for({"contacts": [], "open_cases": []}) == "billing"
    late = {"contacts": [{"summary": "order ord-1002 late, wants a refund"}]}
    assert queue_for(late) == "billing"
    login = {"contacts": [{"summary": "cannot log in: the password link fails"}]}
    assert queue_for(login) == "technical"
    assert queue_for({"open_cases": [{"subject": "App crash on start"}]}) == "technical"


def test_an_escalated_open_case_is_found() -> None:
    cases = [
        {"case_id": "case-1", "status": "open"},
        {"case_id": "case-2", "status": "escalated", "queue": "billing"},
    ]
    assert escalated_case({"open_cases": cases}) == cases[1]
    assert escalated_case({"open_cases": cases[:1]}) is None


def test_billing_refunds_the_latest_order_under_the_cases_key() -> None:
    orders = [
        {"order_id": "ord-1002", "placed": "2025-12-24T12:00:00+00:00", "total": 249.0},
        {"order_id": "ord-1003", "placed": "2025-11-21T12:00:00+00:00", "total": 129.5},
    ]
    latest = latest_order(orders)
    assert latest is not None and latest["order_id"] == "ord-1002"
    assert latest_order([]) is None
    assert refund_key("case-00001") == "refund:case-00001"


def test_the_rule_of_a_refusal_is_read_from_the_error() -> None:
    text = "Error executing tool refund_order: refund refused (refund_window): order ord-1003 ..."
    assert refusal_rule(text) == "refund_window"
    assert refusal_rule("escalation refused (already_escalated): case-1") == "already_escalated"
    assert refusal_rule("something else") == "unknown"


TOOLS = tuple(
    ToolSpec(name=name, description="", input_schema={})
    for name in ("search_articles", "get_article", "get_order")
)


async def turn(model: ScriptedModel, *steps: tuple[str, Any]) -> Any:
    """The model's answer after the question and the given (tool, result) pairs."""
    question, *results = steps
    messages = [ChatMessage(role="user", text=question[1])]
    for n, (name, result) in enumerate(results, start=1):
        text = result if isinstance(result, str) else json.dumps(result, indent=2)
        call = ToolCall(id=f"call-{n}", name=name, arguments={})
        messages += [
            ChatMessage(role="assistant", text="", tool_calls=(call,)),
            ChatMessage(role="tool", text=text, tool_call_id=call.id),
        ]
    return await model.complete(ModelRequest(messages=tuple(messages), tools=TOOLS))


@pytest.mark.anyio
async def test_the_front_line_script_answers_orders_and_questions() -> None:
    model = spec_script("support", "front-line")
    (call,) = (await turn(model, ("user", "Where is ord-1001?"))).tool_calls
    assert (call.name, call.arguments) == ("get_order", {"order_id": "ord-1001"})
    order = {"order_id": "ord-1001", "status": "shipped", "tracking": "TRK-88A1", "refund": None}
    answer = await turn(model, ("user", "Where is ord-1001?"), ("get_order", order))
    assert answer.text == "Your order ord-1001 is shipped; its tracking number is TRK-88A1."
    placed = {**order, "status": "placed", "tracking": None}
    answer = await turn(model, ("user", "ord-1004?"), ("get_order", placed))
    assert answer.text == "Your order ord-1001 is placed."
    missing = "lookup refused (unknown_order): order 'ord-9' does not exist"
    answer = await turn(model, ("user", "ord-9?"), ("get_order", missing))
    assert "(unknown_order)" in answer.text

    question = "How do I reset my password?"
    (call,) = (await turn(model, ("user", question))).tool_calls
    assert (call.name, call.arguments) == ("search_articles", {"query": question, "limit": 1})
    hits = {"hits": [{"article_id": "kb-104", "title": "Resetting your password", "score": 8}]}
    (call,) = (await turn(model, ("user", question), ("search_articles", hits))).tool_calls
    assert (call.name, call.arguments) == ("get_article", {"article_id": "kb-104"})
    article = {
        "article_id": "kb-104",
        "title": "Resetting your password",
        "body": "Use 'forgot password' on the sign-in page.",
        "tags": ["account"],
    }
    answer = await turn(
        model, ("user", question), ("search_articles", hits), ("get_article", article)
    )
    assert answer.tool_calls == ()
    assert answer.text == (
        "Use 'forgot password' on the sign-in page. "
        '(help article kb-104: "Resetting your password")'
    )
    nothing = await turn(model, ("user", "zebra"), ("search_articles", {"hits": []}))
    assert "a colleague will get back to you" in nothing.text


@pytest.mark.anyio
async def test_the_billing_script_refunds_a_shipped_order_and_declines_one_not_shipped() -> None:
    model = spec_script("support", "billing-specialist")
    tools = (ToolSpec(name="refund_order", description="", input_schema={}),)
    request = {"case_id": "case-0001", "customer_id": "cust-001", "tier": "platinum",
               "reason": "long_wait in conv-00002: no answer within 600 s"}  # fmt: skip
    shipped = {"order_id": "ord-1001", "customer_id": "cust-001", "items": ["laptop stand"],
               "total": 89.9, "placed": "2026-01-02T09:00:00+00:00", "status": "shipped",
               "tracking": "TRK-88A1", "refund": None}  # fmt: skip

    async def ask(*messages: ChatMessage) -> Any:
        return await model.complete(ModelRequest(messages=messages, tools=tools))

    asked = ChatMessage(role="user", text=prompt(request, shipped))
    first = await ask(asked)
    (call,) = first.tool_calls
    assert call.name == "refund_order"
    assert call.arguments == {
        "order_id": "ord-1001",
        "amount": "89.9",
        "reason": "case case-0001: escalated by customer service",
    }
    refused = "refund refused (refund_window): order ord-1001 is older than 30 days"
    result = ChatMessage(role="tool", text=refused, tool_call_id=call.id)
    answer = await ask(asked, first.as_message(), result)
    assert answer.text == "Not refunded: the order system refused it (refund_window)."

    placed = {**shipped, "status": "placed", "tracking": None}
    declined = await ask(ChatMessage(role="user", text=prompt(request, placed)))
    assert declined.tool_calls == ()
    assert declined.text == (
        "No refund: order ord-1001 has not shipped yet and can still be cancelled."
    )
