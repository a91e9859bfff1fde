"""The maintenance domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chorus_agents.cli.mcp import load_server
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.topology import declared_calls
from chorus_agents.handler import Handler, load_handler
from chorus_agents.maintenance.cmms_server import create_server
from chorus_agents.maintenance.production import INSTRUCTIONS
from chorus_api import Agent, Tool
from chorus_api.streams import resolve_stream
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer

from tests.agents.maintenance import deploy
from tests.agents.maintenance.deploy import BASE, DEPLOY
from tests.agents.tools.mcp_server import serve_http

GENERATOR_OUTPUT = "maintenance.telemetry"
"""What the telemetry generator writes (the Flink job's input)."""


def _yaml(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    resources = deploy.base_resources()
    assert sorted(r.metadata.name for r in resources if isinstance(r, Agent)) == [
        "equipment-monitoring",
        "maintenance-planning",
        "production-scheduling",
    ]
    assert [r.metadata.name for r in resources if isinstance(r, Tool)] == ["cmms"]
    for resource in resources:
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        assert annotations.get("argocd.argoproj.io/sync-wave") == wave, resource.metadata.name


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_maintenance_namespace() -> None:
    assert _yaml(DEPLOY / "kustomization.yaml")["resources"] == ["overlays/dev"]
    overlay = _yaml(DEPLOY / "overlays" / "dev" / "kustomization.yaml")
    assert overlay["namespace"] == "maintenance"
    assert overlay["resources"] == ["../../base"]
    assert (DEPLOY / "overlays" / "dev" / overlay["resources"][0]).resolve() == BASE


@pytest.mark.unit
def test_the_domain_loads_as_kustomize_would_and_declares_its_calls() -> None:
    domain = load_domain(DEPLOY)
    agents = {a.metadata.name: a for a in domain.agents}
    assert {a.metadata.namespace for a in domain.agents} == {"maintenance"}
    assert {t.metadata.namespace for t in domain.tools} == {"maintenance"}
    for agent in agents.values():
        assert agent.spec.resources is not None and agent.spec.resources.limits is not None
    assert declared_calls(domain, "equipment-monitoring") == ["maintenance-planning"]
    assert declared_calls(domain, "maintenance-planning") == ["production-scheduling"]
    assert declared_calls(domain, "production-scheduling") == []


@pytest.mark.unit
def test_the_cmms_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    server = deploy.tools()["cmms"].spec.mcp.server
    assert server is not None
    assert server.image.startswith("ghcr.io/chorus-dev/chorus-agent:")
    assert list(server.args) == [
        "mcp",
        "serve",
        "chorus_agents.maintenance.cmms_server",
        "--port",
        str(server.port),
    ]


@pytest.mark.unit
def test_handlers_load_and_the_scheduling_prompt_is_the_one_its_gate_uses() -> None:
    for agent in deploy.agents().values():
        assert agent.spec.handler is not None
        assert isinstance(load_handler(agent.spec.handler), Handler)
    scheduling = deploy.agents()["production-scheduling"].spec
    assert scheduling.instructions == INSTRUCTIONS
    assert scheduling.model is not None and scheduling.model.provider.value == "scripted"


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    agents = deploy.agents().values()
    published = {p.topic for a in agents for p in a.spec.publish}
    streams = [resolve_stream(s) for a in agents for s in a.spec.streams]
    outputs = {t for s in streams for t in s.outputs}
    inputs = {t for s in streams for t in s.inputs}
    assert "maintenance.signals" in outputs
    assert inputs == {GENERATOR_OUTPUT}
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in published | outputs | {GENERATOR_OUTPUT}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    # and nobody publishes what the Flink job owns
    assert not published & outputs


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_cmms_server() -> None:
    async with serve_http(create_server()) as url, Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    refs = deploy.tools()
    for agent in deploy.agents().values():
        for binding in agent.spec.tools:
            assert binding.ref in refs, f"agent {agent.metadata.name}: no Tool {binding.ref}"
            missing = set(binding.allow) - offered
            assert not missing, f"agent {agent.metadata.name}: the cmms lacks {sorted(missing)}"


@pytest.mark.unit
def test_chorus_mcp_serve_finds_the_cmms_server() -> None:
    assert isinstance(load_server("chorus_agents.maintenance.cmms_server"), MCPServer)
