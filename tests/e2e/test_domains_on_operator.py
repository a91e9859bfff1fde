"""The five reference domains' manifests are accepted by the operator and become their children.

What this proves, for trading, maintenance, support, traffic and icu: the Agents and Tools
that ``load_domain`` reads from ``agents/<domain>/deploy`` (the dev overlay, as GitOps
syncs it) are accepted by the real kube-apiserver (the CRDs' schemas and CEL rules) and
reconciled by the real ``chorus-operator`` process: every Agent gets its ServiceAccount,
ConfigMap, Deployment, Service, NetworkPolicy, KafkaUser, its own four KafkaTopics (inbox,
replies, dlq, tasks) and its publish topics, and a FlinkDeployment per ``streams`` entry;
each domain's Tool, pointed at the domain's own MCP server (its ``create_server()``, the
module the Tool's ``chorus mcp serve`` args name, on a loopback port), offers every tool
an Agent allow-lists (``ToolsResolved`` True, and the allow-list reaches ``runtime.yaml``);
no Agent has any condition failing but the readiness of its children, and once Strimzi,
the Deployment controller and the Flink operator report their children ready (the test
plays them, as ``tests/operator`` does) every Agent is ``Ready`` with every condition True.

One operator watches all five domains (each in a namespace of its own, named as the overlay
says plus a unique suffix) and one Kafka namespace with a Ready Strimzi ``Kafka``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
import yaml
from chorus_agents.cli.mcp import load_server
from chorus_agents.dev.manifests import Domain, find_deploy_dir, load_domain
from chorus_api import Agent, Tool
from chorus_api.topics import own_topics

from tests.operator.harness import (
    PEERING_CRDS,
    Cluster,
    Operator,
    kafka_cluster,
    wait_for,
)
from tests.services.base import REPO, free_port
from tests.services.kube import KubeCluster

pytestmark = pytest.mark.integration

DOMAINS = ("trading", "maintenance", "support", "traffic", "icu")
WORKLOAD_KINDS = ("serviceaccount", "configmap", "deployment", "service", "networkpolicy")
CHILD_READINESS = ("TopicsReady", "AccessReady", "WorkloadReady", "StreamsReady")
"""The conditions that only wait for children (Strimzi, the Deployment, Flink)."""
WAITING_REASONS = {"Pending", "Missing", "RollingOut", "Unavailable", "NotReady", "JobNotRunning"}
"""Reasons a child-readiness condition gives while its children are not ready yet."""


@dataclass
class DomainMcp:
    """A domain's real MCP server (``module.create_server()``), streamable HTTP on loopback."""

    module: str
    port: int = field(default_factory=free_port)
    tools: frozenset[str] = frozenset()
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> DomainMcp:
        import anyio

        server = load_server(self.module)
        self.tools = frozenset(t.name for t in anyio.run(server.list_tools))
        app = server.streamable_http_app(host="127.0.0.1")
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for(lambda: self._server is not None and self._server.started, what=self.module)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class Deployed:
    """One domain as applied: its manifests, its namespace and its Tools' MCP servers."""

    domain: Domain
    ns: str
    servers: dict[str, DomainMcp]


@dataclass
class Landscape:
    cluster: Cluster
    kafka: str
    operator: Operator
    domains: dict[str, Deployed]


def served_module(tool: Tool) -> str:
    """The module the Tool's server runs: ``args: [mcp, serve, <module>, ...]``."""
    server = tool.spec.mcp.server
    assert server is not None, f"Tool {tool.metadata.name}: no mcp.server"
    args = list(server.args)
    assert args[:2] == ["mcp", "serve"], f"Tool {tool.metadata.name}: args {args}"
    return args[2]


def manifest(resource: Agent | Tool, ns: str) -> dict[str, Any]:
    body: dict[str, Any] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    body.pop("status", None)
    body["metadata"]["namespace"] = ns
    return body


def tool_manifest(tool: Tool, ns: str, url: str) -> dict[str, Any]:
    """The Tool as the overlay makes it, but reaching its server at ``url``: the test
    apiserver runs no pods, so the in-cluster server would never answer ``tools/list``."""
    body = manifest(tool, ns)
    body["spec"]["mcp"] = {"url": url}
    return body


@pytest.fixture(scope="module")
def landscape(kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    kube.kubectl("apply", "--server-side", "--field-manager=chorus-tests", "-f", str(PEERING_CRDS))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "-f", str(PEERING_CRDS))
    cluster = Cluster(kube)
    suffix = uuid.uuid4().hex[:6]
    kafka = cluster.namespace(f"kafka-{suffix}")
    kafka_cluster(cluster, kafka)
    servers: list[DomainMcp] = []
    deployed: dict[str, Deployed] = {}
    operator: Operator | None = None
    try:
        for name in DOMAINS:
            domain = load_domain(find_deploy_dir(name, REPO))
            assert domain.namespace == name, f"{name}: the overlay's namespace"
            assert domain.agents and domain.tools, f"{name}: no Agents or no Tools"
            ns = cluster.namespace(f"{domain.namespace}-{suffix}")
            own = {t.metadata.name: DomainMcp(served_module(t)).start() for t in domain.tools}
            servers += own.values()
            deployed[name] = Deployed(domain, ns, own)
        operator = Operator(
            kubeconfig=kube.admin_kubeconfig,
            namespaces=(*(d.ns for d in deployed.values()), kafka),
            kafka_namespace=kafka,
            log=tmp_path_factory.mktemp("domains") / "operator.log",
            env={"CHORUS_KAFKA_AUTHENTICATION": "scram-sha-512"},
        ).start()
        # As Argo CD's sync waves do: the Tools first, then the Agents.
        for d in deployed.values():
            kube.apply(
                [tool_manifest(t, d.ns, d.servers[t.metadata.name].url) for t in d.domain.tools]
            )
        for d in deployed.values():
            kube.apply([manifest(a, d.ns) for a in d.domain.agents])
        yield Landscape(cluster, kafka, operator, deployed)
    finally:
        if operator is not None:
            operator.stop()
        for server in servers:
            server.stop()


def status_of(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    return dict((cluster.get(kind, name, ns) or {}).get("status") or {})


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
        for c in status.get("conditions") or ()
    }


def owned_by(obj: dict[str, Any], kind: str, name: str) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["kind"] == kind and r["name"] == name and r.get("controller") for r in refs)


def missing_children(land: Landscape, d: Deployed) -> list[str]:
    """What the operator has not made yet, for every Agent of the domain."""
    cluster, ns, kafka = land.cluster, d.ns, land.kafka
    missing: list[str] = []
    topics = {t["spec"]["topicName"] for t in cluster.list("kafkatopic", kafka)}
    users = cluster.names("kafkauser", kafka)
    for agent in d.domain.agents:
        name = agent.metadata.name
        for kind in WORKLOAD_KINDS:
            obj = cluster.get(kind, name, ns)
            if obj is None or not owned_by(obj, "Agent", name):
                missing.append(f"{kind}/{name}")
        if f"{ns}.{name}" not in users:
            missing.append(f"kafkauser/{ns}.{name}")
        wanted = set(own_topics(ns, name).values())
        wanted |= {p.topic for p in agent.spec.publish}
        missing += [f"kafkatopic {t} (of {name})" for t in sorted(wanted - topics)]
        flink = {
            f["metadata"]["labels"].get("chorus.dev/stream"): f
            for f in cluster.list("flinkdeployment", ns, f"chorus.dev/agent={name}")
        }
        for stream in agent.spec.streams:
            found = flink.get(stream.name)
            if found is None or not owned_by(found, "Agent", name):
                missing.append(f"flinkdeployment {name}/{stream.name}")
        extra = set(flink) - {s.name for s in agent.spec.streams}
        missing += [f"unexpected flinkdeployment {name}/{s}" for s in sorted(map(str, extra))]
    return missing


def play_controllers(land: Landscape, d: Deployed) -> None:
    """Reports the domain's children ready as Strimzi, the Deployment controller and the
    Flink operator would: only objects whose status lags their generation (the Kafka
    namespace is shared, so other domains' topics and users are reported too)."""
    cluster = land.cluster
    agents = {a.metadata.name for a in d.domain.agents}
    for kind in ("kafkatopic", "kafkauser"):
        for obj in cluster.list(kind, land.kafka):
            generation = obj["metadata"].get("generation", 1)
            if (obj.get("status") or {}).get("observedGeneration") == generation:
                continue
            cluster.patch_status(
                kind,
                obj["metadata"]["name"],
                land.kafka,
                {
                    "observedGeneration": generation,
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            )
    for obj in cluster.list("deployment", d.ns):
        if obj["metadata"]["name"] not in agents:
            continue
        generation = obj["metadata"]["generation"]
        if (obj.get("status") or {}).get("observedGeneration") == generation:
            continue
        replicas = obj["spec"].get("replicas", 1)
        cluster.patch_status(
            "deployment",
            obj["metadata"]["name"],
            d.ns,
            {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True"}],
            },
        )
    for obj in cluster.list("flinkdeployment", d.ns):
        if (obj.get("status") or {}).get("jobStatus", {}).get("state") == "RUNNING":
            continue
        cluster.patch_status(
            "flinkdeployment",
            obj["metadata"]["name"],
            d.ns,
            {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}},
        )


@pytest.mark.parametrize("name", DOMAINS)
def test_domain_becomes_its_children_and_ready(landscape: Landscape, name: str) -> None:
    land, d = landscape, landscape.domains[name]
    cluster, ns = land.cluster, d.ns

    # Each Tool discovers its domain's real server: every tool the Agents allow-list exists.
    for tool in d.domain.tools:
        tname, server = tool.metadata.name, d.servers[tool.metadata.name]
        found = wait_for(
            lambda t=tname: status_of(cluster, "tool", t, ns).get("discoveredToolCount"),  # type: ignore[misc]
            what=f"{name}: Tool {tname} discovered ({land.operator.log})",
        )
        assert found == len(server.tools)
        discovered = {t["name"] for t in status_of(cluster, "tool", tname, ns)["discoveredTools"]}
        assert discovered == server.tools
    offered = {t.metadata.name: d.servers[t.metadata.name].tools for t in d.domain.tools}
    for agent in d.domain.agents:
        for binding in agent.spec.tools:
            assert binding.ref in offered, f"{agent.metadata.name}: no Tool {binding.ref}"
            unknown = set(binding.allow or ()) - offered[binding.ref]
            assert not unknown, f"{agent.metadata.name} allows tools {binding.ref} lacks: {unknown}"

    # Every Agent's children exist.
    try:
        wait_for(lambda: not missing_children(land, d), what=f"{name}: children", timeout=120)
    except AssertionError:
        report = {
            a.metadata.name: conditions(status_of(cluster, "agent", a.metadata.name, ns))
            for a in d.domain.agents
        }
        raise AssertionError(
            f"{name}: missing {missing_children(land, d)}\nconditions: {report}\n"
            f"{land.operator.tail()}"
        ) from None

    # No condition fails but the children's readiness; the tools are resolved.
    for agent in d.domain.agents:
        aname = agent.metadata.name
        status = wait_for(
            lambda a=aname: (  # type: ignore[misc]
                (s := status_of(cluster, "agent", a, ns))
                and conditions(s).get("ToolsResolved", ("",))[0] == "True"
                and s
            ),
            what=f"{name}: {aname} ToolsResolved",
        )
        found = conditions(status)
        assert found["ToolsResolved"][:2] == ("True", "Resolved"), (aname, found)
        assert status["phase"] in ("Pending", "Degraded", "Ready"), (aname, status)
        for type_ in CHILD_READINESS:
            state, reason, message = found[type_]
            assert state == "True" or reason in WAITING_REASONS, (aname, type_, reason, message)
        runtime = yaml.safe_load(
            (cluster.get("configmap", aname, ns) or {})["data"]["runtime.yaml"]
        )
        runtime_tools = [
            (t.get("name"), t.get("url"), t.get("allow")) for t in runtime.get("tools") or ()
        ]
        wanted = [
            (b.ref, d.servers[b.ref].url, list(b.allow) if b.allow is not None else None)
            for b in agent.spec.tools
        ]
        assert sorted(map(str, runtime_tools)) == sorted(map(str, wanted)), aname

    # Strimzi, the Deployment controller and Flink report ready: every Agent is Ready.
    def all_ready() -> bool:
        play_controllers(land, d)
        return all(
            (s := status_of(cluster, "agent", a.metadata.name, ns)).get("phase") == "Ready"
            and all(c[0] == "True" for c in conditions(s).values())
            for a in d.domain.agents
        )

    try:
        wait_for(all_ready, what=f"{name}: every Agent Ready", timeout=120)
    except AssertionError:
        report = {
            a.metadata.name: conditions(status_of(cluster, "agent", a.metadata.name, ns))
            for a in d.domain.agents
        }
        raise AssertionError(f"{name}: not Ready: {report}\n{land.operator.tail()}") from None
