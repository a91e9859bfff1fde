"""The instruction-driven agent: a scripted model driving real MCP tool calls.

The model is the ``scripted`` provider (deterministic, offline); the tools are a real MCP
server (the official SDK) with a stateful counter, over streamable HTTP; the last test
runs the agent on the real broker and asks it over the A2A Kafka binding.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.binding.outbox import Outbox
from chorus_agents.handler import Context, DomainEvent, Incoming
from chorus_agents.instructed import InstructedAgent, InstructedError
from chorus_agents.models import ModelRequest, ModelResponse, ScriptedModel, ToolSpec
from chorus_agents.tools import McpToolGateway, MemoryAudit
from chorus_api.runtime import RuntimeTool
from mcp.server.mcpserver import MCPServer

from tests.agents.conftest import (
    Connect,
    StartAgent,
    agent_config,
    answer_text,
    namespace,
    user_text,
)
from tests.agents.tools.mcp_server import build_server, serve_http

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

AGENT = "trading/counter-agent"
SCRIPT = [
    {"when": r"(?i)add (?P<n>\d+)", "call": {"name": "add", "arguments": {"n": "{n}"}}},
    {"after": "add", "reply": "The counter is now {result}."},
    {"when": "(?i)cancel", "call": {"name": "cancel_all", "arguments": {}}},
    {"after": "cancel_all", "reply": "Could not cancel: {result}"},
    {"when": "(?i)loop", "call": {"name": "total", "arguments": {}}},
    {"after": "total", "call": {"name": "total", "arguments": {}}},
]


class HallucinatingModel(ScriptedModel):
    """The scripted model, but it may call ``cancel_all`` although it is not offered.

    Real models sometimes call a tool they were not given; the scripted one refuses to,
    so this one pretends it was offered.
    """

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await super().complete(
            replace(request, tools=(*request.tools, ToolSpec(name="cancel_all")))
        )


def counter(server: MCPServer) -> dict[str, int]:
    state: dict[str, int] = server.state  # type: ignore[attr-defined]
    return state


@pytest.fixture
def server() -> MCPServer:
    return build_server()


@pytest.fixture
async def url(server: MCPServer) -> AsyncIterator[str]:
    async with serve_http(server) as url:
        yield url


@pytest.fixture
def audit() -> MemoryAudit:
    return MemoryAudit()


@pytest.fixture
async def agent(url: str, audit: MemoryAudit) -> AsyncIterator[InstructedAgent]:
    tools = McpToolGateway(
        [RuntimeTool.model_validate({"name": "counter", "url": url, "allow": ["add", "total"]})],
        agent=AGENT,
        audit=audit,
    )
    instructed = InstructedAgent(
        agent=AGENT,
        instructions="You keep a counter.",
        model=HallucinatingModel.from_document(SCRIPT),
        tools=tools,
        audit=audit,
        max_steps=4,
    )
    yield instructed
    await instructed.aclose()


def context() -> Context:
    return Context(agent=AGENT, outbox=Outbox(), publish_topics=())


def incoming(text: str, task_id: str) -> Incoming:
    return Incoming(text=text, task_id=task_id, context_id="conv-1", sender="")


async def test_the_model_calls_a_tool_and_answers_with_its_result(
    agent: InstructedAgent, server: MCPServer, audit: MemoryAudit
) -> None:
    first = await agent.on_message(incoming("please add 5", "task-1"), context())
    second = await agent.on_message(incoming("now add 3", "task-2"), context())

    assert (first.text, second.text) == ("The counter is now 5.", "The counter is now 8.")
    assert counter(server)["total"] == 8
    calls = audit.of("tool.call")
    assert [(c["name"], c["outcome"], c["idempotency_key"]) for c in calls] == [
        ("add", "ok", "task-1/1/0"),
        ("add", "ok", "task-2/1/0"),
    ]
    models = audit.of("model.call")
    assert [(m["task_id"], m["step"], m["stop_reason"], m["tool_calls"]) for m in models] == [
        ("task-1", 1, "tool_use", ["add"]),
        ("task-1", 2, "end", []),
        ("task-2", 1, "tool_use", ["add"]),
        ("task-2", 2, "end", []),
    ]
    assert models[0]["provider"] == "scripted" and models[0]["input_tokens"] > 0
    decision = audit.of("decision")[0]
    assert (decision["task_id"], decision["outcome"], decision["steps"], decision["text"]) == (
        "task-1",
        "answer",
        2,
        "The counter is now 5.",
    )
    assert agent.usage.input_tokens == sum(m["input_tokens"] for m in models)


async def test_a_call_outside_the_allow_list_is_refused_audited_and_told_to_the_model(
    agent: InstructedAgent, server: MCPServer, audit: MemoryAudit
) -> None:
    await agent.on_message(incoming("add 2", "task-1"), context())
    reply = await agent.on_message(incoming("cancel everything", "task-2"), context())

    assert reply.text == (
        "Could not cancel: agent trading/counter-agent: tool 'counter': "
        "may not call 'cancel_all' (allowed: add, total)"
    )
    assert counter(server)["total"] == 2  # cancel_all never ran
    (refused,) = audit.of("tool.refused")
    assert (refused["tool"], refused["name"], refused["idempotency_key"]) == (
        "counter",
        "cancel_all",
        "task-2/1/0",
    )


async def test_the_loop_gives_up_after_max_steps(
    agent: InstructedAgent, audit: MemoryAudit
) -> None:
    with pytest.raises(InstructedError, match=r"counter-agent: no answer after 4 model calls"):
        await agent.on_message(incoming("loop forever", "task-9"), context())
    assert len(audit.of("tool.call")) == 4
    assert audit.of("decision")[-1]["outcome"] == "no-answer"


async def test_a_domain_event_is_given_to_the_model_as_a_message(
    agent: InstructedAgent, server: MCPServer, audit: MemoryAudit
) -> None:
    event = DomainEvent(topic="orders", key="o-1", value={"note": "add 4"}, partition=1, offset=7)
    await agent.on_event(event, context())
    assert counter(server)["total"] == 4
    assert audit.of("tool.call")[0]["idempotency_key"] == "orders/1/7/1/0"
    assert audit.of("decision")[0]["text"] == "The counter is now 4."


async def test_an_instructed_agent_answers_over_kafka(
    kafka: Any,
    start_agent: StartAgent,
    caller: Connect,
    server: MCPServer,
    url: str,
    tmp_path: Path,
) -> None:
    import yaml

    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump(SCRIPT))
    ns = namespace()
    config = agent_config(
        ns,
        "counter",
        kafka,
        handler=None,
        instructions="You keep a counter.",
        model={"provider": "scripted", "scriptFile": str(script)},
        tools=[{"name": "counter", "url": url, "allow": ["add"], "timeoutSeconds": 10}],
    )
    audit = MemoryAudit()
    logic = InstructedAgent.from_config(config, audit=audit)
    try:
        host = await start_agent(config, logic)
        assert host.card is not None
        connection = await caller(ns)
        answer = await asyncio.wait_for(
            connection.transport(host.card, host.card.supported_interfaces[0].url).send_message(
                SendMessageRequest(message=user_text("add 6", context_id="conv-1"))
            ),
            60,
        )
    finally:
        await logic.aclose()
    assert answer_text(answer.task) == "The counter is now 6."
    assert counter(server)["total"] == 6
    (call,) = audit.of("tool.call")
    assert call["idempotency_key"] == f"{answer.task.id}/1/0"
