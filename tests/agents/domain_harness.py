"""What the reference domains' tests share: manifests and their checks, and a running domain.

A domain ``<name>`` deploys ``agents/<name>/deploy``: a base (``base/kustomization.yaml``
listing resource files, Tools at sync wave ``-1``, Agents at ``1``) and a dev overlay
that sets the namespace ``<name>`` and smaller containers (:data:`DEV_AGENT_REQUESTS`).
:class:`DomainManifests` reads the base with ``chorus_api.load_resources`` (a
deliberately small reader; :func:`check_kustomize_view` compares it with what kustomize
makes of ``deploy/``); each ``check_*`` function asserts one property every domain must
have and names the agent or resource that breaks it, so a domain's test module keeps
only its own assertions (its agents, tools, topics, calls and job, by name).
:class:`DomainRun` starts a domain's Agents from those manifests on the test's Kafka.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chorus_agents.cli.mcp import load_server
from chorus_agents.dev.config import runtime_config_for
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.topology import declared_calls
from chorus_agents.handler import Handler, load_handler
from chorus_agents.host import AgentHost
from chorus_api import Agent, Resource, Tool, load_resources
from chorus_api.streams import resolve_stream
from chorus_api.topics import audit_topic
from confluent_kafka import Producer
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer

from tests.agents.conftest import StartAgent, create_missing_topics
from tests.agents.tools.mcp_server import serve_http
from tests.services.kafka import read_topic

AGENTS_DIR = Path(__file__).resolve().parents[2] / "agents"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
RUNTIME_IMAGE = "ghcr.io/chorus-dev/chorus-agent:"
"""The shared runtime image (any tag): Agents and the domains' MCP servers run from it."""
DEV_AGENT_REQUESTS = {"cpu": "50m", "memory": "128Mi"}
"""What the dev overlay's patch makes every Agent request."""


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def expect(found: Any, expected: Any, what: str) -> None:
    """``assert found == expected`` that says ``what`` and both values: pytest does not
    rewrite this module's asserts (it is neither a test module nor a conftest)."""
    assert found == expected, f"{what}: {found!r}, expected {expected!r}"


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


def check_resources(
    manifests: DomainManifests, *, agents: Iterable[str], tools: Iterable[str]
) -> None:
    """The base holds exactly the Agents ``agents`` and the Tools ``tools`` (by name),
    Tools at sync wave ``-1`` (before the Agents that use them), Agents at ``1``."""
    resources = manifests.base_resources()
    found = sorted(r.metadata.name for r in resources if isinstance(r, Agent))
    expect(found, sorted(agents), f"domain {manifests.name}: Agents")
    found = sorted(r.metadata.name for r in resources if isinstance(r, Tool))
    expect(found, sorted(tools), f"domain {manifests.name}: Tools")
    for resource in resources:
        wave = "-1" if isinstance(resource, Tool) else "1"
        annotations = resource.metadata.annotations or {}
        expect(annotations.get(SYNC_WAVE), wave, f"{resource.metadata.name}: sync wave")


def check_dev_overlay(manifests: DomainManifests, namespace: str | None = None) -> None:
    """The GitOps path (``deploy/kustomization.yaml``) leads to the dev overlay, which sets
    the namespace (the domain's name by default) over the base."""
    gitops = manifests.deploy / "kustomization.yaml"
    expect(read_yaml(gitops)["resources"], ["overlays/dev"], f"{gitops}: resources")
    overlay_dir = manifests.deploy / "overlays" / "dev"
    overlay = read_yaml(overlay_dir / "kustomization.yaml")
    expect(overlay["namespace"], namespace or manifests.name, f"{overlay_dir}: namespace")
    expect(overlay["resources"], ["../../base"], f"{overlay_dir}: resources")
    expect((overlay_dir / overlay["resources"][0]).resolve(), manifests.base, "the base")


def check_kustomize_view(manifests: DomainManifests, namespace: str | None = None) -> None:
    """``deploy/`` read as ``kubectl apply -k`` would (``load_domain``) holds the base's
    Agents and Tools, all in the namespace (the domain's name by default); every Agent
    gets the dev overlay's resource requests (:data:`DEV_AGENT_REQUESTS`) and limits."""
    namespace = namespace or manifests.name
    domain = load_domain(manifests.deploy)
    what = f"domain {manifests.name}, as kustomize builds it"
    expect((domain.name, domain.namespace), (manifests.name, namespace), what)
    found = sorted(a.metadata.name for a in domain.agents)
    expect(found, sorted(manifests.agents()), f"{what}: Agents")
    expect(sorted(t.metadata.name for t in domain.tools), sorted(manifests.tools()), what)
    expect({a.metadata.namespace for a in domain.agents}, {namespace}, f"{what}: namespaces")
    expect({t.metadata.namespace for t in domain.tools}, {namespace}, f"{what}: namespaces")
    for agent in domain.agents:
        name, resources = agent.metadata.name, agent.spec.resources
        assert resources is not None, f"agent {name}: no resources"
        expect(resources.requests, DEV_AGENT_REQUESTS, f"agent {name}: resource requests")
        assert resources.limits, f"agent {name}: no resource limits"


def check_declared_calls(manifests: DomainManifests, calls: Mapping[str, Iterable[str]]) -> None:
    """Each Agent declares (``chorus.dev/calls``) exactly the Agents ``calls`` gives it,
    none when it is not named there, and every Agent declared is one of the domain's."""
    domain = load_domain(manifests.deploy)
    names = {a.metadata.name for a in domain.agents}
    assert set(calls) <= names, f"no such agents: {sorted(set(calls) - names)}"
    for name in sorted(names):
        declared = declared_calls(domain, name)
        expect(declared, sorted(calls.get(name, ())), f"agent {name}: declared calls")
        unknown = set(declared) - names
        assert not unknown, f"agent {name}: calls {sorted(unknown)}, not Agents of the domain"


def check_tool_server(manifests: DomainManifests, tool: str, module: str) -> None:
    """The Tool's MCP server runs from the runtime image as ``chorus mcp serve <module>``
    on its port, and ``module`` is one that command loads."""
    server = manifests.tools()[tool].spec.mcp.server
    assert server is not None, f"tool {tool}: no server"
    assert server.image.startswith(RUNTIME_IMAGE), f"tool {tool}: image {server.image}"
    args = ["mcp", "serve", module, "--port", str(server.port)]
    expect(list(server.args), args, f"tool {tool}: server args")
    assert isinstance(load_server(module), MCPServer), f"chorus mcp serve {module}: no server"


def check_handlers_load(manifests: DomainManifests, *, instructed: Iterable[str] = ()) -> None:
    """Every Agent's handler loads as a :class:`Handler`; the Agents named in
    ``instructed`` have none (the runtime runs their instructions)."""
    skip = set(instructed)
    for name, agent in manifests.agents().items():
        if name in skip:
            continue
        assert agent.spec.handler is not None, f"agent {name}: no handler"
        assert isinstance(load_handler(agent.spec.handler), Handler), name


def check_instructions(
    manifests: DomainManifests, agent: str, instructions: str, *, provider: str = "scripted"
) -> None:
    """The Agent's spec carries the instructions its gate runs the model with, and that
    model (the reference domains run the scripted one: no API key in dev)."""
    spec = manifests.agents()[agent].spec
    assert spec.instructions == instructions, agent
    assert spec.model is not None, f"agent {agent}: no model"
    expect(spec.model.provider.value, provider, f"agent {agent}: model provider")


def check_topics_have_producers(
    manifests: DomainManifests, *, job: str, signals: str, generator_output: str
) -> None:
    """The Agents' one stream runs the Flink ``job``, which reads only the generator's
    output and writes ``signals``; every subscribed topic is published by an Agent,
    written by the job or the generator; no Agent publishes what the job owns."""
    agents = manifests.agents().values()
    published = {p.topic for a in agents for p in a.spec.publish}
    streams = [resolve_stream(s) for a in agents for s in a.spec.streams]
    expect([s.job.module for s in streams], [job], f"domain {manifests.name}: stream jobs")
    outputs = {t for s in streams for t in s.outputs}
    inputs = {t for s in streams for t in s.inputs}
    assert signals in outputs, f"{job} writes {sorted(outputs)}, not {signals}"
    expect(inputs, {generator_output}, f"{job}: inputs")
    for agent in agents:
        for entry in agent.spec.subscribe:
            assert entry.topic in published | outputs | {generator_output}, (
                f"agent {agent.metadata.name}: nobody writes {entry.topic}"
            )
    assert not published & outputs, f"Agents publish what {job} writes: {published & outputs}"


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


def with_script(agent: Agent, script: str) -> Agent:
    """``agent`` with its scripted model's script replaced by ``script``."""
    model = agent.spec.model
    assert model is not None, f"agent {agent.metadata.name}: no model to give a script"
    spec = agent.spec.model_copy(update={"model": model.model_copy(update={"script": script})})
    return agent.model_copy(update={"spec": spec})


DECLINES_ALL = '- reply: "none: I decline to act on this."\n'
"""A script whose model declines everything it is shown (no tool call, no action)."""


def chain(records: list[dict[str, Any]], start: dict[str, Any]) -> list[dict[str, Any]]:
    """``start`` and the records it was caused by, back to the first (audit causation)."""
    by_id = {r["id"]: r for r in records}
    found = [start]
    while (cause := found[-1].get("causation_id")) in by_id:
        found.append(by_id[cause])
    return found


class DomainRun:
    """A domain's agents running in-process on the test's Kafka, under a topic prefix.

    Subclasses hold the domain's back ends; ``manifests`` are the domain's, which
    :meth:`running` starts the Agents from; ``signals_topic`` is where :meth:`send` writes
    signals as the Flink job would (keyed by their ``subject``), ``timeout`` how long
    :meth:`until` waits by default.
    """

    manifests: DomainManifests
    signals_topic: str
    timeout: float = 90

    def __init__(self, kafka: Any, ns: str) -> None:
        self.kafka = kafka
        self.ns = ns
        self.prefix = f"{ns}."
        self.hosts: dict[str, AgentHost] = {}

    def topic(self, name: str) -> str:
        return self.prefix + name

    @asynccontextmanager
    async def running(
        self,
        start_agent: StartAgent,
        *,
        topics: Iterable[str],
        servers: Mapping[str, MCPServer[Any]],
        logic: Mapping[str, Callable[[str], Handler]],
        scripts: Mapping[str, str] | None = None,
    ) -> AsyncIterator[None]:
        """Creates the domain's ``topics`` under the prefix, serves each Tool's MCP server
        (``servers``, by Tool name) over HTTP, and starts every Agent of the manifests with
        the handler ``logic[name](prefix)`` in ``logic``'s order (callees before callers).
        ``scripts`` replaces the named Agents' ``model.script`` (another model decides).
        Exiting stops the servers; ``start_agent`` stops the agents."""
        agents, tools = self.manifests.agents(), self.manifests.tools()
        for name, script in (scripts or {}).items():
            agents[name] = with_script(agents[name], script)
        expect(sorted(logic), sorted(agents), f"domain {self.manifests.name}: Agents with logic")
        names = [self.topic(t) for t in topics]
        await asyncio.to_thread(create_missing_topics, self.kafka, names, partitions=1)
        async with AsyncExitStack() as stack:
            urls = {
                tool: await stack.enter_async_context(serve_http(server))
                for tool, server in servers.items()
            }
            for name, make in logic.items():
                config = runtime_config_for(
                    agents[name],
                    self.kafka.bootstrap_servers,
                    urls,
                    tools=tools,
                    namespace=self.ns,
                    topic_prefix=self.prefix,
                    instance="replica-0",
                )
                self.hosts[name] = await start_agent(config, make(self.prefix))
            yield

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
        return self.read(audit_topic(self.ns))

    async def until(self, check: Callable[[], Any], timeout: float | None = None) -> Any:
        """The first truthy result of ``check()``, polled every 0.3 s; times out."""

        async def poll() -> Any:
            while True:
                found = await asyncio.to_thread(check)
                if found:
                    return found
                await asyncio.sleep(0.3)

        return await asyncio.wait_for(poll(), self.timeout if timeout is None else timeout)
