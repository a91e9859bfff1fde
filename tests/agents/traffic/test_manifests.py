"""The traffic domain's manifests: valid resources, real tools, consistent topics and calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.topology import declared_calls
from chorus_agents.handler import Handler, load_handler
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
from chorus_api import Agent, Tool
from chorus_api.streams import resolve_stream
from mcp.client.client import Client

from tests.agents.tools.mcp_server import serve_http
from tests.agents.traffic import deploy
from tests.agents.traffic.deploy import BASE, DEPLOY


def _yaml(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.unit
def test_every_resource_parses_and_carries_its_sync_wave() -> None:
    resources = deploy.base_resources()
    assert sorted(r.metadata.name for r in resources if isinstance(r, Agent)) == sorted(
        [MONITORING_AGENT, EMERGENCY_AGENT, "public-transport"]
        + [signal_agent(i) for i in MANAGED_INTERSECTIONS]
    )
    assert [r.metadata.name for r in resources if isinstance(r, Tool)] == ["signals"]
    for resource in resources:
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        assert annotations.get("argocd.argoproj.io/sync-wave") == wave, resource.metadata.name


@pytest.mark.unit
def test_the_gitops_path_leads_to_the_dev_overlay_in_the_traffic_namespace() -> None:
    assert _yaml(DEPLOY / "kustomization.yaml")["resources"] == ["overlays/dev"]
    overlay = _yaml(DEPLOY / "overlays" / "dev" / "kustomization.yaml")
    assert overlay["namespace"] == "traffic"
    assert (DEPLOY / "overlays" / "dev" / overlay["resources"][0]).resolve() == BASE
    domain = load_domain(DEPLOY)
    assert {a.metadata.namespace for a in domain.agents} == {"traffic"}
    assert all(a.spec.resources is not None for a in domain.agents)


@pytest.mark.unit
def test_the_signals_tool_runs_from_the_runtime_image_with_chorus_mcp_serve() -> None:
    server = deploy.tools()["signals"].spec.mcp.server
    assert server is not None
    assert server.image.startswith("ghcr.io/chorus-dev/chorus-agent:")
    assert list(server.args) == [
        "mcp",
        "serve",
        "chorus_agents.traffic.signals_server",
        "--port",
        str(server.port),
    ]


@pytest.mark.unit
def test_handlers_load_and_the_transit_prompt_is_the_one_its_gate_uses() -> None:
    for agent in deploy.agents().values():
        assert agent.spec.handler is not None
        assert isinstance(load_handler(agent.spec.handler), Handler)
    assert deploy.agents()["public-transport"].spec.instructions == INSTRUCTIONS


@pytest.mark.unit
def test_the_monitor_declares_whom_it_calls() -> None:
    domain = load_domain(DEPLOY)
    assert declared_calls(domain, MONITORING_AGENT) == sorted(
        [EMERGENCY_AGENT] + [signal_agent(i) for i in MANAGED_INTERSECTIONS]
    )
    for callee in declared_calls(domain, MONITORING_AGENT):
        assert domain.agent(callee) is not None, callee


@pytest.mark.unit
def test_every_subscribed_topic_has_a_producer_and_the_job_knows_the_network() -> None:
    agents = deploy.agents().values()
    published = {p.topic for a in agents for p in a.spec.publish}
    streams = [(s, resolve_stream(s)) for a in agents for s in a.spec.streams]
    outputs = {t for _, s in streams for t in s.outputs}
    inputs = {t for _, s in streams for t in s.inputs}
    assert "traffic.signals" in outputs
    assert inputs == {READINGS}
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in published | outputs | {READINGS}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    assert not published & outputs
    ((stream, _),) = streams
    assert stream.job == "chorus_flink.jobs.traffic"
    neighbours = json.loads(stream.config["neighbours"])
    assert {k: tuple(v) for k, v in neighbours.items()} == dict(NEIGHBOURS)


@pytest.mark.integration
@pytest.mark.anyio
async def test_every_allowed_tool_exists_on_the_signals_server() -> None:
    async with serve_http(create_server()) as url, Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    refs = deploy.tools()
    for agent in deploy.agents().values():
        for binding in agent.spec.tools:
            assert binding.ref in refs, f"agent {agent.metadata.name}: no Tool {binding.ref}"
            missing = set(binding.allow) - offered
            assert not missing, f"agent {agent.metadata.name}: signals lacks {sorted(missing)}"
