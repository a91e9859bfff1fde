"""The trading domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

import pytest
from chorus_agents.trading.compliance import INSTRUCTIONS
from chorus_agents.trading.exchange_server import create_server

from tests.agents import domain_harness as harness
from tests.agents.trading.deploy import MANIFESTS

GENERATOR_OUTPUT = "trading.trades"
"""What the market data generator writes (the Flink job's input)."""


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    harness.check_resources(
        MANIFESTS,
        agents=["compliance", "execution", "market-analyst", "risk-assessor"],
        tools=["exchange"],
    )


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_trading_namespace() -> None:
    harness.check_dev_overlay(MANIFESTS)
    harness.check_kustomize_view(MANIFESTS)
    harness.check_declared_calls(MANIFESTS, {"market-analyst": ["execution", "risk-assessor"]})


@pytest.mark.unit
def test_the_exchange_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    harness.check_tool_server(MANIFESTS, "exchange", "chorus_agents.trading.exchange_server")


@pytest.mark.unit
def test_handlers_load_and_the_compliance_prompt_is_the_one_its_gate_uses() -> None:
    harness.check_handlers_load(MANIFESTS)
    harness.check_instructions(MANIFESTS, "compliance", INSTRUCTIONS)


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    harness.check_topics_have_producers(
        MANIFESTS,
        job="chorus_flink.jobs.trading",
        signals="trading.signals",
        generator_output=GENERATOR_OUTPUT,
    )


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_exchange_server() -> None:
    await harness.check_allowed_tools_exist(MANIFESTS, create_server())
