"""The traffic domain's manifests: valid resources, real tools, consistent topics and calls."""

from __future__ import annotations

import json

import pytest
from chorus_agents.traffic.common import (
    EMERGENCY_AGENT,
    MANAGED_INTERSECTIONS,
    MONITORING_AGENT,
    READINGS,
    signal_agent,
)
from chorus_agents.traffic.network import NEIGHBOURS
from chorus_agents.traffic.public_transport import INSTRUCTIONS
from chorus_agents.traffic.signals_server import create_server

from tests.agents import domain_harness as harness
from tests.agents.traffic.deploy import MANIFESTS


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    harness.check_resources(
        MANIFESTS,
        agents=[MONITORING_AGENT, EMERGENCY_AGENT, "public-transport"]
        + [signal_agent(i) for i in MANAGED_INTERSECTIONS],
        tools=["signals"],
    )


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_traffic_namespace() -> None:
    harness.check_dev_overlay(MANIFESTS)
    harness.check_kustomize_view(MANIFESTS)


@pytest.mark.unit
def test_the_signals_tool_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    harness.check_tool_server(MANIFESTS, "signals", "chorus_agents.traffic.signals_server")


@pytest.mark.unit
def test_handlers_load_and_the_transit_prompt_is_the_one_its_gate_uses() -> None:
    harness.check_handlers_load(MANIFESTS)
    harness.check_instructions(MANIFESTS, "public-transport", INSTRUCTIONS)


@pytest.mark.unit
def test_the_monitor_declares_whom_it_calls() -> None:
    harness.check_declared_calls(
        MANIFESTS,
        {MONITORING_AGENT: [EMERGENCY_AGENT] + [signal_agent(i) for i in MANAGED_INTERSECTIONS]},
    )


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer_and_the_job_knows_the_network() -> None:
    harness.check_topics_have_producers(
        MANIFESTS,
        job="chorus_flink.jobs.traffic",
        signals="traffic.signals",
        generator_output=READINGS,
    )
    ((stream,),) = [a.spec.streams for a in MANIFESTS.agents().values() if a.spec.streams]
    neighbours = json.loads(stream.config["neighbours"])
    assert {k: tuple(v) for k, v in neighbours.items()} == dict(NEIGHBOURS)


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_signals_server() -> None:
    await harness.check_allowed_tools_exist(MANIFESTS, create_server())
