"""The support domain's manifests: valid resources, real tools, consistent topics."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.topology import declared_calls
from chorus_agents.handler import Handler, load_handler
from chorus_agents.support.escalation import SPECIALISTS
from chorus_agents.support.front_line import INSTRUCTIONS
from chorus_agents.support.generator import TOPIC as GENERATOR_OUTPUT
from chorus_agents.support.helpdesk_server import create_server
from chorus_api import Agent, Tool
from chorus_api.streams import resolve_stream
from mcp.client.client import Client

from tests.agents.support import deploy
from tests.agents.support.deploy import BASE, DEPLOY
from tests.agents.tools.mcp_server import serve_http


def _yaml(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    resources = deploy.base_resources()
    assert sorted(r.metadata.name for r in resources if isinstance(r, Agent)) == [
        "billing-specialist",
        "escalation",
        "front-line",
        "technical-specialist",
    ]
    assert [r.metadata.name for r in resources if isinstance(r, Tool)] == ["helpdesk"]
    for resource in resources:
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        assert annotations.get("argocd.argoproj.io/sync-wave") == wave, resource.metadata.name


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_support_namespace() -> None:
    assert _yaml(DEPLOY / "kustomization.yaml")["resources"] == ["overlays/dev"]
    overlay = _yaml(DEPLOY / "overlays" / "dev" / "kustomization.yaml")
    assert overlay["namespace"] == "support"
    assert overlay["resources"] == ["../../base"]
    assert (DEPLOY / "overlays" / "dev" / overlay["resources"][0]).resolve() == BASE
    domain = load_domain(DEPLOY)
    assert (domain.name, domain.namespace) == ("support", "support")
    for agent in domain.agents:
        assert agent.spec.resources is not None
        assert agent.spec.resources.requests == {"cpu": "50m", "memory": "128Mi"}


@pytest.mark.unit
def test_the_helpdesk_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    server = deploy.tools()["helpdesk"].spec.mcp.server
    assert server is not None
    assert server.image.startswith("ghcr.io/chorus-dev/chorus-agent:")
    assert list(server.args) == [
        "mcp",
        "serve",
        "chorus_agents.support.helpdesk_server",
        "--port",
        str(server.port),
    ]


@pytest.mark.unit
def test_handlers_load_and_the_front_line_prompt_is_the_one_its_wrapper_uses() -> None:
    for agent in deploy.agents().values():
        assert agent.spec.handler is not None
        assert isinstance(load_handler(agent.spec.handler), Handler)
    front_line = deploy.agents()["front-line"]
    assert front_line.spec.instructions == INSTRUCTIONS
    assert front_line.spec.model is not None and front_line.spec.model.provider.value == "scripted"


@pytest.mark.unit
def test_escalation_declares_the_specialists_it_calls_and_they_exist() -> None:
    domain = load_domain(DEPLOY)
    assert declared_calls(domain, "escalation") == sorted(SPECIALISTS.values())
    assert set(SPECIALISTS.values()) <= set(deploy.agents())


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer() -> None:
    agents = deploy.agents().values()
    published = [p.topic for a in agents for p in a.spec.publish]
    assert len(published) == len(set(published)), "two agents publish one topic"
    streams = [resolve_stream(s) for a in agents for s in a.spec.streams]
    assert [s.job.module for s in streams] == ["chorus_flink.jobs.customer_service"]
    outputs = {t for s in streams for t in s.outputs}
    inputs = {t for s in streams for t in s.inputs}
    assert "support.signals" in outputs
    assert inputs == {GENERATOR_OUTPUT}
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in set(published) | outputs | {GENERATOR_OUTPUT}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    # and nobody publishes what the Flink job owns
    assert not set(published) & outputs


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_helpdesk_server() -> None:
    async with serve_http(create_server()) as url, Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    refs = deploy.tools()
    for agent in deploy.agents().values():
        for binding in agent.spec.tools:
            assert binding.ref in refs, f"agent {agent.metadata.name}: no Tool {binding.ref}"
            missing = set(binding.allow) - offered
            assert not missing, f"agent {agent.metadata.name}: helpdesk lacks {sorted(missing)}"


@pytest.mark.unit
def test_chorus_mcp_serve_finds_the_helpdesk_server() -> None:
    from chorus_agents.cli.mcp import load_server

    assert load_server("chorus_agents.support.helpdesk_server").name == "helpdesk"
