"""The model comes from the Agent's spec: change the manifest's model and another model
decides, with the same code around it (trading's compliance gate)."""

from __future__ import annotations

import json

import pytest
from chorus_agents.binding.outbox import Outbox
from chorus_agents.dev.config import runtime_config_for
from chorus_agents.dev.manifests import load_domain
from chorus_agents.handler import Context, HandlerError
from chorus_agents.models import ChatMessage, ModelProvider, ModelRequest, ToolSpec, provider_for
from chorus_agents.trading.compliance import ComplianceAgent

from tests.agents.trading.test_logic import envelope
from tests.services.base import REPO

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

DECLINES = '- reply: "No compliance action: I leave every symbol open."\n'


def compliance_model(script: str | None = None) -> ModelProvider:
    """The compliance Agent's model as the runtime builds it, its script replaced if given."""
    domain = load_domain(REPO / "agents" / "trading" / "deploy")
    (agent,) = [a for a in domain.agents if a.metadata.name == "compliance"]
    if script is not None:
        assert agent.spec.model is not None
        model = agent.spec.model.model_copy(update={"script": script})
        agent = agent.model_copy(update={"spec": agent.spec.model_copy(update={"model": model})})
    config = runtime_config_for(agent, "127.0.0.1:9092", {"exchange": "http://127.0.0.1:1/mcp"})
    assert config.model is not None
    return provider_for(config.model)


async def decide(model: ModelProvider) -> tuple[str, tuple[str, ...]]:
    """What the gate's loop model answers to a flash crash: its text and tool calls."""
    ctx = Context(agent="trading/compliance", outbox=Outbox(), publish_topics=(), model=model)
    loop = ComplianceAgent().loop(ctx, None)
    assert loop.model is model  # the gate consults the spec's model, nothing packaged
    crash = envelope("price_spike", price=105.6, vwap=120.0, deviation=-0.12)
    text = "Event on trading.signals (key ACME):\n" + json.dumps(crash)
    tools = (ToolSpec(name="restrict_symbol"),)
    answer = await loop.model.complete(
        ModelRequest(messages=(ChatMessage(role="user", text=text),), tools=tools)
    )
    return answer.text, tuple(call.name for call in answer.tool_calls)


async def test_the_manifests_model_restricts_and_another_script_declines() -> None:
    assert (await decide(compliance_model()))[1] == ("restrict_symbol",)
    text, calls = await decide(compliance_model(DECLINES))
    assert calls == () and text == "No compliance action: I leave every symbol open."


async def test_an_agent_whose_spec_has_no_model_is_told_so() -> None:
    ctx = Context(agent="trading/compliance", outbox=Outbox(), publish_topics=())
    with pytest.raises(HandlerError, match="trading/compliance: its spec has no model"):
        ComplianceAgent().loop(ctx, None)
