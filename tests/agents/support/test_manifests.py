"""The support domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

import pytest
from chorus_agents.cli.mcp import load_server
from chorus_agents.support import billing
from chorus_agents.support.escalation import SPECIALISTS
from chorus_agents.support.front_line import INSTRUCTIONS
from chorus_agents.support.generator import TOPIC as GENERATOR_OUTPUT
from chorus_agents.support.helpdesk_server import create_server

from tests.agents import domain_harness as harness
from tests.agents.support.deploy import MANIFESTS


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    harness.check_resources(
        MANIFESTS,
        agents=["billing-specialist", "escalation", "front-line", "technical-specialist"],
        tools=["helpdesk"],
    )


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_support_namespace() -> None:
    harness.check_dev_overlay(MANIFESTS)
    harness.check_kustomize_view(MANIFESTS)


@pytest.mark.unit
def test_the_helpdesk_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    harness.check_tool_server(MANIFESTS, "helpdesk", "chorus_agents.support.helpdesk_server")


@pytest.mark.unit
def test_handlers_load_and_the_instructed_agents_prompts_are_the_ones_their_code_uses() -> None:
    harness.check_handlers_load(MANIFESTS)
    harness.check_instructions(MANIFESTS, "front-line", INSTRUCTIONS)
    harness.check_instructions(MANIFESTS, "billing-specialist", billing.INSTRUCTIONS)


@pytest.mark.unit
def test_escalation_declares_the_specialists_it_calls_and_they_exist() -> None:
    harness.check_declared_calls(MANIFESTS, {"escalation": SPECIALISTS.values()})


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    published = [p.topic for a in MANIFESTS.agents().values() for p in a.spec.publish]
    assert len(published) == len(set(published)), "two agents publish one topic"
    harness.check_topics_have_producers(
        MANIFESTS,
        job="chorus_flink.jobs.customer_service",
        signals="support.signals",
        generator_output=GENERATOR_OUTPUT,
    )


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_helpdesk_server() -> None:
    await harness.check_allowed_tools_exist(MANIFESTS, create_server())


@pytest.mark.unit
def test_chorus_mcp_serve_finds_the_helpdesk_server() -> None:
    assert load_server("chorus_agents.support.helpdesk_server").name == "helpdesk"
