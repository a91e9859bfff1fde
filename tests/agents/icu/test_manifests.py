"""The ICU domain's manifests: valid resources, real tools, consistent topics, call edges."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from chorus_agents.icu.clinical_server import create_server
from chorus_agents.icu.treatment import INSTRUCTIONS
from mcp import StdioServerParameters
from mcp.client.client import Client

from tests.agents import domain_harness as harness
from tests.agents.icu.deploy import MANIFESTS

GENERATOR_OUTPUT = "icu.vitals"
"""What the vitals generator writes (the Flink job's input)."""
AGENTS = ["care-coordination", "medication-management", "treatment-advice", "vital-signs"]


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    harness.check_resources(MANIFESTS, agents=AGENTS, tools=["clinical"])


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_icu_namespace() -> None:
    harness.check_dev_overlay(MANIFESTS)
    harness.check_kustomize_view(MANIFESTS)


@pytest.mark.unit
def test_the_declared_calls_are_the_ones_the_handlers_make() -> None:
    harness.check_declared_calls(
        MANIFESTS,
        {
            "vital-signs": ["care-coordination", "treatment-advice"],
            "treatment-advice": ["medication-management"],
            "medication-management": [],
            "care-coordination": [],
        },
    )


@pytest.mark.unit
def test_the_clinical_server_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    harness.check_tool_server(MANIFESTS, "clinical", "chorus_agents.icu.clinical_server")


@pytest.mark.unit
def test_handlers_load_and_the_treatment_prompt_is_the_one_its_gate_uses() -> None:
    harness.check_handlers_load(MANIFESTS)
    harness.check_instructions(MANIFESTS, "treatment-advice", INSTRUCTIONS)


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    published = {p.topic for a in MANIFESTS.agents().values() for p in a.spec.publish}
    assert published == {
        "icu.assessments",
        "icu.advice",
        "icu.medication-events",
        "icu.escalations",
    }
    harness.check_topics_have_producers(
        MANIFESTS,
        job="chorus_flink.jobs.icu",
        signals="icu.signals",
        generator_output=GENERATOR_OUTPUT,
    )


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_clinical_server() -> None:
    await harness.check_allowed_tools_exist(MANIFESTS, create_server())


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_mcp_serve_runs_the_ward_the_tool_names() -> None:
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("chorus")),
        args=["mcp", "serve", "chorus_agents.icu.clinical_server", "--transport", "stdio"],
    )
    async with Client(params) as client:
        patient = await client.call_tool("get_patient", {"patient_id": "pt-002"})
    assert patient.structured_content is not None
    orders = patient.structured_content["medication_orders"]
    assert [(o["drug"], o["status"]) for o in orders] == [("amlodipine", "active")]
