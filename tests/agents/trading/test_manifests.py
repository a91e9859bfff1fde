"""The trading domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

import pytest
from chorus_agents.trading.compliance import INSTRUCTIONS
from chorus_agents.trading.exchange_server import create_server
from chorus_api import Agent, Tool

from tests.agents.domain_harness import (
    check_allowed_tools_exist,
    check_dev_overlay,
    check_handlers_load,
    check_instructions,
    check_sync_waves,
    check_topics_have_producers,
)
from tests.agents.trading import deploy
from tests.agents.trading.deploy import MANIFESTS

GENERATOR_OUTPUT = "trading.trades"
"""What the market data generator writes (the Flink job's input)."""


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    resources = deploy.base_resources()
    assert sorted(r.metadata.name for r in resources if isinstance(r, Agent)) == [
        "compliance",
        "execution",
        "market-analyst",
        "risk-assessor",
    ]
    assert [r.metadata.name for r in resources if isinstance(r, Tool)] == ["exchange"]
    check_sync_waves(MANIFESTS)


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_trading_namespace() -> None:
    check_dev_overlay(MANIFESTS)


@pytest.mark.unit
def test_the_exchange_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    server = deploy.tools()["exchange"].spec.mcp.server
    assert server is not None
    assert server.image.startswith("ghcr.io/chorus-dev/chorus-agent:")
    assert list(server.args) == [
        "mcp",
        "serve",
        "chorus_agents.trading.exchange_server",
        "--port",
        str(server.port),
    ]


@pytest.mark.unit
def test_handlers_load_and_the_compliance_prompt_is_the_one_its_gate_uses() -> None:
    check_handlers_load(MANIFESTS)
    check_instructions(MANIFESTS, "compliance", INSTRUCTIONS)


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    check_topics_have_producers(
        MANIFESTS, signals="trading.signals", generator_output=GENERATOR_OUTPUT
    )


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_exchange_server() -> None:
    await check_allowed_tools_exist(MANIFESTS, create_server())
