"""The maintenance domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

import pytest
from chorus_agents.maintenance.cmms_server import create_server
from chorus_agents.maintenance.production import INSTRUCTIONS

from tests.agents import domain_harness as harness
from tests.agents.maintenance.deploy import MANIFESTS

GENERATOR_OUTPUT = "maintenance.telemetry"
"""What the telemetry generator writes (the Flink job's input)."""


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    harness.check_resources(
        MANIFESTS,
        agents=["equipment-monitoring", "maintenance-planning", "production-scheduling"],
        tools=["cmms"],
    )


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_maintenance_namespace() -> None:
    harness.check_dev_overlay(MANIFESTS)


@pytest.mark.unit
def test_the_domain_loads_as_kustomize_would_and_declares_its_calls() -> None:
    harness.check_kustomize_view(MANIFESTS)
    harness.check_declared_calls(
        MANIFESTS,
        {
            "equipment-monitoring": ["maintenance-planning"],
            "maintenance-planning": ["production-scheduling"],
        },
    )


@pytest.mark.unit
def test_the_cmms_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    harness.check_tool_server(MANIFESTS, "cmms", "chorus_agents.maintenance.cmms_server")


@pytest.mark.unit
def test_handlers_load_and_the_scheduling_prompt_is_the_one_its_gate_uses() -> None:
    harness.check_handlers_load(MANIFESTS)
    harness.check_instructions(MANIFESTS, "production-scheduling", INSTRUCTIONS)


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    harness.check_topics_have_producers(
        MANIFESTS,
        job="chorus_flink.jobs.maintenance",
        signals="maintenance.signals",
        generator_output=GENERATOR_OUTPUT,
    )


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_cmms_server() -> None:
    await harness.check_allowed_tools_exist(MANIFESTS, create_server())
