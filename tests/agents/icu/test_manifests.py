"""The ICU domain's manifests: valid resources, real tools, consistent topics, call edges."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.topology import declared_calls
from chorus_agents.handler import Handler, load_handler
from chorus_agents.icu.clinical_server import create_server
from chorus_agents.icu.treatment import INSTRUCTIONS
from chorus_api import Agent, Tool
from chorus_api.streams import resolve_stream
from mcp.client.client import Client

from tests.agents.icu import deploy
from tests.agents.icu.deploy import BASE, DEPLOY
from tests.agents.tools.mcp_server import serve_http

GENERATOR_OUTPUT = "icu.vitals"
"""What the vitals generator writes (the Flink job's input)."""
AGENTS = ["care-coordination", "medication-management", "treatment-advice", "vital-signs"]


def _yaml(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    resources = deploy.base_resources()
    assert sorted(r.metadata.name for r in resources if isinstance(r, Agent)) == AGENTS
    assert [r.metadata.name for r in resources if isinstance(r, Tool)] == ["clinical"]
    for resource in resources:
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        assert annotations.get("argocd.argoproj.io/sync-wave") == wave, resource.metadata.name


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_icu_namespace() -> None:
    assert _yaml(DEPLOY / "kustomization.yaml")["resources"] == ["overlays/dev"]
    overlay = _yaml(DEPLOY / "overlays" / "dev" / "kustomization.yaml")
    assert overlay["namespace"] == "icu"
    assert overlay["resources"] == ["../../base"]
    assert (DEPLOY / "overlays" / "dev" / overlay["resources"][0]).resolve() == BASE
    domain = load_domain(DEPLOY)
    assert sorted(a.metadata.name for a in domain.agents) == AGENTS
    assert {a.metadata.namespace for a in domain.agents} == {"icu"}
    for agent in domain.agents:
        assert agent.spec.resources is not None
        assert agent.spec.resources.requests == {"cpu": "50m", "memory": "128Mi"}


@pytest.mark.unit
def test_the_declared_calls_are_the_ones_the_handlers_make() -> None:
    domain = load_domain(DEPLOY)
    assert declared_calls(domain, "vital-signs") == ["care-coordination", "treatment-advice"]
    assert declared_calls(domain, "treatment-advice") == ["medication-management"]
    assert declared_calls(domain, "medication-management") == []
    assert declared_calls(domain, "care-coordination") == []


@pytest.mark.unit
def test_the_clinical_server_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    server = deploy.tools()["clinical"].spec.mcp.server
    assert server is not None
    assert server.image.startswith("ghcr.io/chorus-dev/chorus-agent:")
    assert list(server.args) == [
        "mcp",
        "serve",
        "chorus_agents.icu.clinical_server",
        "--port",
        str(server.port),
    ]


@pytest.mark.unit
def test_handlers_load_and_the_treatment_prompt_is_the_one_its_gate_uses() -> None:
    for agent in deploy.agents().values():
        assert agent.spec.handler is not None
        assert isinstance(load_handler(agent.spec.handler), Handler)
    assert deploy.agents()["treatment-advice"].spec.instructions == INSTRUCTIONS


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    agents = deploy.agents().values()
    published = {p.topic for a in agents for p in a.spec.publish}
    assert published == {
        "icu.assessments",
        "icu.advice",
        "icu.medication-events",
        "icu.escalations",
    }
    streams = [resolve_stream(s) for a in agents for s in a.spec.streams]
    outputs = {t for s in streams for t in s.outputs}
    inputs = {t for s in streams for t in s.inputs}
    assert "icu.signals" in outputs
    assert inputs == {GENERATOR_OUTPUT}
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in published | outputs | {GENERATOR_OUTPUT}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    assert not published & outputs


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_clinical_server() -> None:
    async with serve_http(create_server()) as url, Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    refs = deploy.tools()
    for agent in deploy.agents().values():
        for binding in agent.spec.tools:
            assert binding.ref in refs, f"agent {agent.metadata.name}: no Tool {binding.ref}"
            missing = set(binding.allow) - offered
            assert not missing, f"agent {agent.metadata.name}: clinical lacks {sorted(missing)}"


@pytest.mark.integration
@pytest.mark.anyio
async def test_chorus_mcp_serve_runs_the_ward_the_tool_names() -> None:
    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("chorus")),
        args=["mcp", "serve", "chorus_agents.icu.clinical_server", "--transport", "stdio"],
    )
    async with Client(params) as client:
        patient = await client.call_tool("get_patient", {"patient_id": "pt-002"})
    assert patient.structured_content is not None
    orders = patient.structured_content["medication_orders"]
    assert [(o["drug"], o["status"]) for o in orders] == [("amlodipine", "active")]
