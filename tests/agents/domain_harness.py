"""What the reference domains' tests share: manifests and their checks, and a running domain.

A domain ``<name>`` deploys ``agents/<name>/deploy``: a base (``base/kustomization.yaml``
listing resource files, Tools at sync wave ``-1``, Agents at ``1``) and a dev overlay
that only sets the namespace ``<name>``. :class:`DomainManifests` reads the base with
``chorus_api.load_resources`` (a deliberately small reader, no kustomize); each
``check_*`` function asserts one property every domain must have and names the agent or
resource that breaks it, so a domain's test module keeps only its own assertions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chorus_agents.handler import Handler, load_handler
from chorus_agents.host import AgentHost
from chorus_api import Agent, Resource, Tool, load_resources
from chorus_api.streams import resolve_stream
from confluent_kafka import Producer
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer

from tests.agents.tools.mcp_server import serve_http
from tests.services.kafka import read_topic

AGENTS_DIR = Path(__file__).resolve().parents[2] / "agents"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DomainManifests:
    """The manifests of the domain ``name`` (``agents/<name>/deploy``)."""

    name: str

    @property
    def deploy(self) -> Path:
        return AGENTS_DIR / self.name / "deploy"

    @property
    def base(self) -> Path:
        return self.deploy / "base"

    def base_resources(self) -> list[Resource]:
        """Every resource the base lists, in its order."""
        found: list[Resource] = []
        for entry in read_yaml(self.base / "kustomization.yaml")["resources"]:
            found.extend(load_resources((self.base / entry).read_text(encoding="utf-8")))
        return found

    def agents(self) -> dict[str, Agent]:
        return {r.metadata.name: r for r in self.base_resources() if isinstance(r, Agent)}

    def tools(self) -> dict[str, Tool]:
        return {r.metadata.name: r for r in self.base_resources() if isinstance(r, Tool)}


def check_sync_waves(manifests: DomainManifests) -> None:
    """Tools at sync wave ``-1`` (before the Agents that use them), Agents at ``1``."""
    for resource in manifests.base_resources():
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        assert annotations.get(SYNC_WAVE) == wave, resource.metadata.name


def check_dev_overlay(manifests: DomainManifests, namespace: str | None = None) -> None:
    """The GitOps path (``deploy/kustomization.yaml``) leads to the dev overlay, which sets
    the namespace (the domain's name by default) over the base."""
    assert read_yaml(manifests.deploy / "kustomization.yaml")["resources"] == ["overlays/dev"]
    overlay_dir = manifests.deploy / "overlays" / "dev"
    overlay = read_yaml(overlay_dir / "kustomization.yaml")
    assert overlay["namespace"] == (namespace or manifests.name)
    assert overlay["resources"] == ["../../base"]
    assert (overlay_dir / overlay["resources"][0]).resolve() == manifests.base


def check_handlers_load(manifests: DomainManifests, *, instructed: Iterable[str] = ()) -> None:
    """Every Agent's handler loads as a :class:`Handler`; the Agents named in
    ``instructed`` have none (the runtime runs their instructions)."""
    skip = set(instructed)
    for name, agent in manifests.agents().items():
        if name in skip:
            continue
        assert agent.spec.handler is not None, f"agent {name}: no handler"
        assert isinstance(load_handler(agent.spec.handler), Handler), name


def check_instructions(manifests: DomainManifests, agent: str, instructions: str) -> None:
    """The Agent's spec carries the instructions its gate runs the model with."""
    assert manifests.agents()[agent].spec.instructions == instructions, agent


def check_topics_have_producers(
    manifests: DomainManifests, *, signals: str, generator_output: str
) -> None:
    """The Flink job (the Agents' streams) reads only the generator's output and writes
    ``signals``; every subscribed topic is published by an Agent, written by the job or
    the generator; no Agent publishes what the job owns."""
    agents = manifests.agents().values()
    published = {p.topic for a in agents for p in a.spec.publish}
    streams = [resolve_stream(s) for a in agents for s in a.spec.streams]
    outputs = {t for s in streams for t in s.outputs}
    inputs = {t for s in streams for t in s.inputs}
    assert signals in outputs
    assert inputs == {generator_output}
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in published | outputs | {generator_output}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    assert not published & outputs


async def check_allowed_tools_exist(manifests: DomainManifests, server: MCPServer[Any]) -> None:
    """Every Agent's tool binding names a Tool of the domain, and every name it allows is a
    tool ``server`` (the real MCP server, served over HTTP) offers."""
    async with serve_http(server) as url, Client(url) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
    refs = manifests.tools()
    for agent in manifests.agents().values():
        for binding in agent.spec.tools:
            assert binding.ref in refs, f"agent {agent.metadata.name}: no Tool {binding.ref}"
            missing = set(binding.allow) - offered
            assert not missing, (
                f"agent {agent.metadata.name}: {server.name} lacks {sorted(missing)}"
            )


class DomainRun:
    """A domain's agents running in-process on the test's Kafka, under a topic prefix.

    Subclasses hold the domain's back ends; ``signals_topic`` is where :meth:`send` writes
    signals as the Flink job would (keyed by their ``subject``), ``timeout`` how long
    :meth:`until` waits by default.
    """

    signals_topic: str
    timeout: float = 90

    def __init__(self, kafka: Any, ns: str) -> None:
        self.kafka = kafka
        self.ns = ns
        self.prefix = f"{ns}."
        self.hosts: dict[str, AgentHost] = {}

    def topic(self, name: str) -> str:
        return self.prefix + name

    def send(self, *signals: dict[str, Any]) -> None:
        producer = Producer(self.kafka.client_config())
        for value in signals:
            producer.produce(
                self.topic(self.signals_topic), key=value["subject"], value=json.dumps(value)
            )
        assert producer.flush(10) == 0

    def read(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(r.value() or b"") for r in read_topic(self.kafka, name)]

    def published(self, name: str) -> list[dict[str, Any]]:
        return self.read(self.topic(name))

    def audit(self) -> list[dict[str, Any]]:
        return self.read(f"chorus.{self.ns}.audit")

    async def until(self, check: Callable[[], Any], timeout: float | None = None) -> Any:
        """The first truthy result of ``check()``, polled every 0.3 s; times out."""

        async def poll() -> Any:
            while True:
                found = await asyncio.to_thread(check)
                if found:
                    return found
                await asyncio.sleep(0.3)

        return await asyncio.wait_for(poll(), self.timeout if timeout is None else timeout)
