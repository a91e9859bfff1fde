"""Code-defined handlers call MCP tools through ``ctx.tools``: the agent's tool gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chorus_agents.binding.outbox import Outbox
from chorus_agents.handler import Context, DomainEvent, Handler, HandlerError, tool_scope
from chorus_agents.tools import McpToolGateway, MemoryAudit, ToolRefused
from confluent_kafka import Producer
from mcp.server.mcpserver import MCPServer

from tests.agents.conftest import StartAgent, agent_config, create_missing_topics, namespace
from tests.agents.tools.mcp_server import build_server, serve_http
from tests.services.kafka import read_topic


class ToolUser(Handler):
    """Adds the event's ``n`` on the counter server, asks whoami, tries a forbidden tool."""

    def __init__(self, out: str) -> None:
        self.out = out

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        added = await ctx.tools.call("counter", "add", {"n": event.value["n"]})
        who = await ctx.tools.call("counter", "whoami")
        try:
            await ctx.tools.call("counter", "cancel_all", {})
            refused = ""
        except ToolRefused as exc:
            refused = str(exc)
        ctx.publish(
            self.out,
            {
                "total": added.text,
                "whoami": who.text,
                "refused": refused,
                "position": f"{event.topic}/{event.partition}/{event.offset}",
            },
            key=event.key,
        )


@pytest.mark.unit
@pytest.mark.anyio
async def test_a_call_outside_a_handling_needs_a_key_and_refusals_are_audited() -> None:
    audit = MemoryAudit()
    ctx = Context(
        agent="ns/a",
        outbox=Outbox(),
        publish_topics=(),
        tools=McpToolGateway((), agent="ns/a", audit=audit),
    )
    with pytest.raises(HandlerError, match="needs an explicit idempotency_key"):
        await ctx.tools.call("counter", "add", {"n": 1})
    with tool_scope("task-1"), pytest.raises(ToolRefused, match="has no tool 'counter'"):
        await ctx.tools.call("counter", "add", {"n": 1})
    (refused,) = audit.of("tool.refused")
    assert refused["idempotency_key"] == "task-1/1"
    assert refused["name"] == "add"


@pytest.fixture
def server() -> MCPServer:
    return build_server()


@pytest.fixture
async def url(server: MCPServer) -> AsyncIterator[str]:
    async with serve_http(server) as url:
        yield url


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_code_defined_handler_calls_mcp_tools_within_its_allow_list(
    kafka: Any, start_agent: StartAgent, server: MCPServer, url: str
) -> None:
    ns = namespace()
    events, out = f"{ns}.events", f"{ns}.out"
    await asyncio.to_thread(create_missing_topics, kafka, [events, out], partitions=1)
    config = agent_config(
        ns,
        "tool-user",
        kafka,
        handler="tests.agents.test_handler_tools:ToolUser",
        topics={"subscribe": [events], "publish": [out]},
        tools=[{"name": "counter", "url": url, "allow": ["add", "whoami"]}],
    )
    await start_agent(config, ToolUser(out))

    producer = Producer(kafka.client_config())
    producer.produce(events, key="k", value=json.dumps({"n": 5}))
    producer.produce(events, key="k", value=json.dumps({"n": 2}))
    assert producer.flush(10) == 0

    async def published() -> list[dict[str, Any]]:
        while True:
            records = await asyncio.to_thread(read_topic, kafka, out)
            if len(records) >= 2:
                return [json.loads(r.value() or b"") for r in records]
            await asyncio.sleep(0.2)

    first, second = await asyncio.wait_for(published(), 60)
    assert (first["total"], second["total"]) == ("5", "7")
    assert server.state["total"] == 7  # type: ignore[attr-defined]
    # the key is the event's position and the call's number within its handling
    assert first["whoami"].startswith(f"key={first['position']}/2 ")
    assert second["whoami"].startswith(f"key={second['position']}/2 ")
    assert "may not call 'cancel_all' (allowed: add, whoami)" in first["refused"]

    audit = [json.loads(r.value() or b"") for r in read_topic(kafka, config.topics.audit)]
    calls = [a["fields"] for a in audit if a["kind"] == "tool.call"]
    refusals = [a["fields"] for a in audit if a["kind"] == "tool.refused"]
    assert [(c["name"], c["outcome"], c["idempotency_key"]) for c in calls[:2]] == [
        ("add", "ok", f"{first['position']}/1"),
        ("whoami", "ok", f"{first['position']}/2"),
    ]
    assert len(refusals) == 2
    assert {r["name"] for r in refusals} == {"cancel_all"}
    assert refusals[0]["idempotency_key"] == f"{first['position']}/3"
