"""Token usage and estimated cost per model call: the price comes from the Agent's spec,
reaches the runtime config (operator and local), the audit record and the metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chorus_agents.dev.config import runtime_config_for
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import ScriptedModel, provider_for
from chorus_agents.tools.base import MemoryAudit
from chorus_api.agent import Agent, ModelPrice
from prometheus_client import REGISTRY
from pydantic import ValidationError

pytestmark = pytest.mark.unit

AGENT: Any = {
    "apiVersion": "chorus.dev/v1alpha1",
    "kind": "Agent",
    "metadata": {"name": "desk", "namespace": "trading"},
    "spec": {
        "instructions": "Answer.",
        "model": {"provider": "scripted", "price": {"input": 2.5, "output": 10}},
    },
}


def cost_total() -> float:
    labels = {"provider": "scripted", "model": "scripted"}
    return REGISTRY.get_sample_value("chorus_model_cost_usd_total", labels) or 0.0


def test_a_price_is_per_million_tokens_and_a_negative_one_is_refused_naming_the_field() -> None:
    assert ModelPrice(input=2.5, output=10).cost(1_000_000, 0) == 2.5
    assert ModelPrice(input=2.5, output=10).cost(2_000, 500) == pytest.approx(0.01)
    model = {"provider": "scripted", "price": {"input": -1, "output": 0}}
    bad: Any = {**AGENT, "spec": {**AGENT["spec"], "model": model}}
    with pytest.raises(ValidationError) as caught:
        Agent.model_validate(bad)
    assert caught.value.errors()[0]["loc"][-3:] == ("model", "price", "input")


def test_the_price_travels_to_the_runtime_config() -> None:
    config = runtime_config_for(Agent.model_validate(AGENT), "127.0.0.1:9092", {})
    assert config.model is not None and config.model.price == ModelPrice(input=2.5, output=10)


def test_each_model_call_is_audited_with_its_tokens_and_cost_and_counted() -> None:
    audit = MemoryAudit()
    model = ScriptedModel.from_document([{"reply": "one two three"}])
    before = cost_total()
    agent = InstructedAgent(
        agent="trading/desk",
        instructions="Answer in three words.",
        model=model,
        audit=audit,
        price=ModelPrice(input=2.5, output=10),
    )
    asyncio.run(agent.run("what now", task_id="t1"))
    (call,) = audit.of("model.call")
    tokens_in, tokens_out = call["input_tokens"], call["output_tokens"]
    assert (tokens_in, tokens_out) == (6, 3)  # the scripted model counts words (4 + 2 in)
    assert call["cost_usd"] == pytest.approx((6 * 2.5 + 3 * 10) / 1e6)
    assert cost_total() - before == pytest.approx(call["cost_usd"])

    unpriced = InstructedAgent(agent="trading/desk", instructions="x", model=model, audit=audit)
    asyncio.run(unpriced.run("again", task_id="t2"))
    assert "cost_usd" not in audit.of("model.call")[1]  # tokens only, no made-up price


def test_the_specs_price_rides_with_the_model_so_every_loop_audits_the_cost() -> None:
    config = runtime_config_for(Agent.model_validate(AGENT), "127.0.0.1:9092", {})
    assert config.model is not None
    model = provider_for(config.model)
    assert model.price == ModelPrice(input=2.5, output=10)
    audit = MemoryAudit()
    # As a domain's gate builds its loop: the model only, no price of its own.
    loop = InstructedAgent(agent="trading/desk", instructions="x", model=model, audit=audit)
    asyncio.run(loop.run("go", task_id="t3"))
    assert audit.of("model.call")[0]["cost_usd"] > 0


class Closing(ScriptedModel):
    """A scripted model that counts how often it is closed."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def test_a_loop_closes_its_own_model_and_leaves_the_hosts_to_the_host() -> None:
    config = runtime_config_for(Agent.model_validate(AGENT), "127.0.0.1:9092", {})
    hosts = Closing()
    given = InstructedAgent.from_config(config, model=hosts)
    asyncio.run(given.aclose())
    assert hosts.closed == 0  # the host closes the spec's model once, itself
    own = InstructedAgent(agent="a/b", instructions="Answer.", model=Closing())
    asyncio.run(own.aclose())
    assert isinstance(own.model, Closing) and own.model.closed == 1
