"""``chorus trace``: the chain behind an id, from records in to chain out, and on Kafka."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.audit import AuditLog
from chorus_agents.binding.outbox import Outbox
from chorus_agents.cli import app
from chorus_agents.trace import AuditIndex, flatten, kinds, summary, trace
from typer.testing import CliRunner

from tests.agents.conftest import Connect, StartAgent, agent_config, namespace, user_text
from tests.agents.test_audit import wait_for_records

runner = CliRunner()


def exchange() -> list[dict[str, Any]]:
    """Records as audit.py writes them: a trader asks risk, then places order ord-7.

    trader: message.received -> model.call -> agent.call -> (risk: message.received ->
    decision -> reply.sent) -> tool.call (place_order, order ord-7) -> decision -> reply.sent;
    plus an unrelated handling.
    """
    outbox = Outbox()
    ids = itertools.count(1)
    clock = itertools.count()
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def log(agent: str) -> AuditLog:
        return AuditLog(
            agent=f"shop/{agent}",
            topic="chorus.shop.audit",
            outbox=outbox,
            new_id=lambda: f"r{next(ids)}",
            now=lambda: start + timedelta(seconds=next(clock)),
        )

    trader, risk = log("trader"), log("risk")
    with trader.scope("req-1", task_id="t-trader", context_id="c-1"):
        trader.record("message.received", method="SendMessage", sender="shop/console", text="buy")
        trader.record(
            "model.call",
            provider="scripted",
            model="m",
            step=1,
            outcome="ok",
            input_tokens=12,
            output_tokens=3,
            tool_calls=["place_order"],
        )
        call = trader.record("agent.call", target="risk", text="assess buy ACME")
        with risk.scope("req-2", task_id="t-risk", context_id="c-2", cause=call):
            risk.record("message.received", method="SendMessage", sender="shop/trader", text="x")
            risk.record("decision", action="approve", proposal_id="p-1")
            risk.record("reply.sent", outcome="ok")
        trader.record(
            "tool.call",
            tool="exchange",
            name="place_order",
            outcome="ok",
            order={"order_id": "ord-7"},
        )
        trader.record("decision", action="buy", order_id="ord-7")
        trader.record("reply.sent", outcome="ok")
    with risk.scope("req-3", task_id="t-other"):
        risk.record("message.received", text="unrelated")
    return [json.loads(r.value or b"") for r in outbox.drain()]


@pytest.mark.unit
def test_a_field_id_leads_back_to_the_root_through_the_handling() -> None:
    (found,) = trace(exchange(), "ord-7")
    assert found.matched_by == "fields.order.order_id"
    assert [r["id"] for r in found.matches] == ["r7", "r8"]
    assert kinds(found.chain) == [
        "message.received",
        "model.call",
        "agent.call",
        "tool.call",
        "decision",
    ]
    assert found.missing_cause is None and not found.truncated
    # the tree: the trader's handling, the risk agent's as a branch under the call
    rows = [(depth, r["kind"], r["agent"]) for depth, r in flatten(found.tree)]
    assert rows == [
        (0, "message.received", "shop/trader"),
        (0, "model.call", "shop/trader"),
        (0, "agent.call", "shop/trader"),
        (1, "message.received", "shop/risk"),
        (1, "decision", "shop/risk"),
        (1, "reply.sent", "shop/risk"),
        (0, "tool.call", "shop/trader"),
        (0, "decision", "shop/trader"),
        (0, "reply.sent", "shop/trader"),
    ]


@pytest.mark.unit
def test_ids_of_every_sort_find_their_records() -> None:
    records = exchange()
    index = AuditIndex(records)
    assert index.find("r5") == ("id", [records[4]])
    assert index.find("t-risk") == ("task_id", records[3:6])
    assert index.find("c-2")[0] == "context_id"
    assert index.find("req-1")[0] == "correlation_id"
    assert index.find("p-1") == ("fields.proposal_id", [records[4]])
    assert index.find("nothing") == ("", [])
    # a task id: the chain to its last record crosses from the risk agent to the trader
    (found,) = trace(records, "t-risk")
    assert [(r["agent"], r["kind"]) for r in found.chain] == [
        ("shop/trader", "message.received"),
        ("shop/trader", "model.call"),
        ("shop/trader", "agent.call"),
        ("shop/risk", "message.received"),
        ("shop/risk", "decision"),
        ("shop/risk", "reply.sent"),
    ]
    assert trace(records, "nothing") == []


@pytest.mark.unit
def test_matches_under_different_roots_give_one_trace_each() -> None:
    records = exchange()
    traces = trace(records, "SendMessage")  # not an id field: nothing
    assert traces == []
    for record in records:
        record["fields"]["batch_id"] = "b-1"
    roots = [t.chain[0]["id"] for t in trace(records, "b-1")]
    assert roots == ["r1", "r10"]


@pytest.mark.unit
def test_a_cause_outside_the_log_and_a_cycle_end_the_chain() -> None:
    records = exchange()
    records[0]["causation_id"] = "elsewhere"
    (found,) = trace(records, "r2")
    assert found.missing_cause == "elsewhere"
    assert kinds(found.chain) == ["message.received", "model.call"]
    records[0]["causation_id"] = "r2"  # a corrupt log: r1 <-> r2
    (looped,) = trace(records, "r2")
    assert [r["id"] for r in looped.chain] == ["r1", "r2"]
    assert looped.missing_cause is None


@pytest.mark.unit
def test_the_tree_is_cut_at_the_limit() -> None:
    (found,) = trace(exchange(), "r1", limit=4)
    assert found.truncated
    assert len(flatten(found.tree)) == 4
    (whole,) = trace(exchange(), "r1")
    assert not whole.truncated and len(flatten(whole.tree)) == 9


@pytest.mark.unit
def test_summaries_say_what_each_kind_did() -> None:
    by_kind = {r["kind"] + r["agent"]: summary(r) for r in exchange()}
    assert by_kind["message.receivedshop/trader"] == "from shop/console: buy"
    assert (
        by_kind["model.callshop/trader"]
        == "scripted/m step 1: 12 in / 3 out tokens, calls place_order"
    )
    assert by_kind["agent.callshop/trader"] == "-> risk: assess buy ACME"
    assert by_kind["tool.callshop/trader"] == "exchange.place_order: ok"
    assert by_kind["decisionshop/trader"] == "action=buy, order_id=ord-7"
    assert by_kind["reply.sentshop/risk"] == "ok"


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_trace_follows_a_call_from_one_agent_to_another_on_kafka(
    kafka: Any, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    alpha_config = agent_config(ns, "alpha", kafka)
    alpha = await start_agent(alpha_config)
    await start_agent(agent_config(ns, "beta", kafka))
    assert alpha.card is not None
    transport = (await caller(ns)).transport(alpha.card, alpha.card.supported_interfaces[0].url)
    answer = await transport.send_message(SendMessageRequest(message=user_text("ask beta echo hi")))
    assert answer.task.artifacts[0].parts[0].text == "beta says echo: hi"

    audit = alpha_config.topics.audit
    records = await wait_for_records(
        kafka, audit, lambda rs: sum(r["kind"] == "reply.sent" for r in rs) == 2
    )
    beta_task = next(r["task_id"] for r in records if r["agent"] == f"{ns}/beta")

    args = ["trace", beta_task, "-n", ns, "-b", kafka.bootstrap_servers]
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (found,) = json.loads(result.stdout)
    assert found["matched_by"] == "task_id"
    chain = found["chain"]
    assert [(r["agent"], r["kind"]) for r in chain] == [
        (f"{ns}/alpha", "message.received"),
        (f"{ns}/alpha", "agent.call"),
        (f"{ns}/beta", "message.received"),
        (f"{ns}/beta", "reply.sent"),
    ]
    assert chain[0]["task_id"] == answer.task.id
    assert [d for d, _ in ((row["depth"], row["id"]) for row in found["tree"])] == [0, 0, 1, 1, 0]

    shown = await asyncio.to_thread(runner.invoke, app, args)
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert f"trace {beta_task}: matched by task_id" in text
    chain_part, _, tree_part = text.partition("what the root caused")
    positions = [chain_part.index(kind) for kind in ("message.received", "agent.call")]
    assert positions == sorted(positions)
    assert "-> beta: echo hi" in chain_part and "<- match" in chain_part
    assert f"{ns}/beta" in chain_part and f"{ns}/alpha" in chain_part
    assert f"└ {ns}/beta" in tree_part

    missing = await asyncio.to_thread(runner.invoke, app, ["trace", "no-such-id", *args[2:]])
    assert missing.exit_code == 1
    assert "no-such-id: no audit record names it" in missing.stderr
