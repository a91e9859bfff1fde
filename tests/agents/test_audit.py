"""Audit records: their shape and causation chain, and on Kafka with the outputs they explain."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.audit import SCHEMA, AuditLog, parse_record
from chorus_agents.binding.outbox import Outbox
from chorus_agents.handler import Context, Handler, Incoming, Reply

from tests.agents.conftest import Connect, StartAgent, agent_config, namespace, user_text
from tests.services.kafka import read_topic


def _log(outbox: Outbox, seen: list[tuple[str, Any]] | None = None) -> AuditLog:
    counter = itertools.count(1)
    return AuditLog(
        agent="ns/agent",
        topic="chorus.ns.audit",
        outbox=outbox,
        observe=(lambda kind, fields: seen.append((kind, dict(fields))))
        if seen is not None
        else None,
        new_id=lambda: f"r{next(counter)}",
        now=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


@pytest.mark.unit
def test_records_of_one_handling_share_ids_and_chain_their_causes() -> None:
    outbox = Outbox()
    seen: list[tuple[str, Any]] = []
    audit = _log(outbox, seen)
    with audit.scope("corr-1", task_id="t1", context_id="c1", cause="caller-record"):
        first = audit.record("message.received", text="hi")
        second = audit.record("model.call", provider="scripted", usage={"input_tokens": 3})
        third = audit.record("decision", action="buy")
    outside = audit.record("agent.started")
    records = [json.loads(r.value or b"") for r in outbox.drain()]
    assert [r["id"] for r in records] == [first, second, third, outside] == ["r1", "r2", "r3", "r4"]
    assert [r["causation_id"] for r in records] == ["caller-record", "r1", "r2", None]
    assert [r["correlation_id"] for r in records] == ["corr-1", "corr-1", "corr-1", "r4"]
    assert records[0] == {
        "schema": SCHEMA,
        "id": "r1",
        "time": "2026-01-02T03:04:05Z",
        "agent": "ns/agent",
        "kind": "message.received",
        "task_id": "t1",
        "context_id": "c1",
        "correlation_id": "corr-1",
        "causation_id": "caller-record",
        "trace_id": None,
        "span_id": None,
        "fields": {"text": "hi"},
    }
    assert [k for k, _ in seen] == ["message.received", "model.call", "decision", "agent.started"]


@pytest.mark.unit
def test_records_are_keyed_by_conversation_and_fields_override_the_scope() -> None:
    outbox = Outbox()
    audit = _log(outbox)
    with audit.scope("corr", task_id="t1", context_id="c1"):
        audit.record("tool.call", tool="exchange")
        audit.record("tool.call", context_id="other", causation_id="x")
    audit.record("agent.started")
    keys = [r.key for r in outbox.drain()]
    assert keys == [b"c1", b"other", b"ns/agent"]


@pytest.mark.unit
def test_parse_record_rejects_what_is_no_audit_record() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_record(b"{")
    with pytest.raises(ValueError, match=r"schema 'other/v9' is not chorus\.audit/v1"):
        parse_record(b'{"schema": "other/v9"}')
    assert parse_record(json.dumps({"schema": SCHEMA, "id": "a"}).encode())["id"] == "a"


@pytest.mark.unit
def test_a_kind_must_be_named() -> None:
    with pytest.raises(ValueError, match="agent ns/agent: audit kind ''"):
        _log(Outbox()).record("")


class DecidingHandler(Handler):
    """Records a decision for each message, then answers."""

    async def on_message(self, message: Incoming, ctx: Context) -> Reply:
        ctx.audit.record("decision", action="approve", subject=message.text)
        return Reply(text=f"approved {message.text}")


def audit_records(kafka: Any, topic: str) -> list[dict[str, Any]]:
    return [parse_record(r.value() or b"") for r in read_topic(kafka, topic)]


async def wait_for_records(
    kafka: Any, topic: str, done: Any, timeout: float = 30
) -> list[dict[str, Any]]:
    """The topic's audit records once ``done(records)`` holds."""

    async def poll() -> list[dict[str, Any]]:
        while True:
            records = await asyncio.to_thread(audit_records, kafka, topic)
            if done(records):
                return records
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout)


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_message_leaves_a_causal_chain_on_the_audit_topic(
    kafka: Any, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    config = agent_config(ns, "approver", kafka, handler="tests.agents.test_audit:DecidingHandler")
    agent = await start_agent(config, DecidingHandler())
    assert agent.card is not None
    answer = await (
        (await caller(ns))
        .transport(agent.card, agent.card.supported_interfaces[0].url)
        .send_message(SendMessageRequest(message=user_text("order 7", context_id="conv-7")))
    )
    assert answer.task.artifacts[0].parts[0].text == "approved order 7"

    records = await wait_for_records(
        kafka, config.topics.audit, lambda rs: any(r["kind"] == "reply.sent" for r in rs)
    )
    kinds = [r["kind"] for r in records]
    assert kinds == ["message.received", "decision", "reply.sent"]
    received, decision, sent = records
    assert received["fields"]["text"] == "order 7"
    assert received["agent"] == f"{ns}/approver"
    assert decision["causation_id"] == received["id"]
    assert sent["causation_id"] == decision["id"]
    assert sent["fields"] == {"outcome": "ok"}
    assert {r["task_id"] for r in records} == {answer.task.id}
    assert {r["context_id"] for r in records} == {"conv-7"}
    assert len({r["correlation_id"] for r in records}) == 1
    assert len({r["trace_id"] for r in records}) == 1 and received["trace_id"] is not None
    assert decision["fields"] == {"action": "approve", "subject": "order 7"}
