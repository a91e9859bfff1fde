"""The graph of a domain: which topics feed which Flink streams, agents and tools.

Pure: a :class:`~chorus_agents.dev.manifests.Domain` in, a :class:`Topology` out, and
the topology rendered as Mermaid. Nodes:

- ``topic``: a domain topic (subscribed, published, or read or written by a stream);
- ``inbox``: an agent's A2A inbox ``chorus.<namespace>.a2a.<agent>.inbox``;
- ``stream``: a Flink stream of an agent, its inputs and outputs from the job catalogue
  (:func:`chorus_api.streams.resolve_stream`);
- ``agent`` and ``tool`` (a Tool the domain defines or an agent refers to).

Edges: topic -> stream -> topic (``flow``), topic -> agent (``subscribe``; the inbox
too), agent -> topic (``publish``), agent -> tool (``tool``, labelled with the
allow-listed tool names), and agent -> another agent's inbox (``call``) where the
calling agent declares whom it calls in the annotation :data:`CALLS_ANNOTATION`
(``chorus.dev/calls: "risk-assessor, executor"``); calls that are not declared are not
drawn, as nothing in an Agent's spec says whom it asks.

Node ids are stable (``<kind>:<name>``); :func:`to_mermaid` turns them into Mermaid
identifiers, deterministically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from chorus_api.streams import StreamError, resolve_stream
from chorus_api.topics import inbox_topic

from chorus_agents.dev.manifests import Domain, DomainError

CALLS_ANNOTATION = "chorus.dev/calls"
"""An Agent's annotation naming the agents it calls, comma-separated."""


class NodeKind(StrEnum):
    """What a node is; also its Mermaid class and SVG shape."""

    TOPIC = "topic"
    INBOX = "inbox"
    STREAM = "stream"
    AGENT = "agent"
    TOOL = "tool"


class EdgeKind(StrEnum):
    """What an edge means."""

    FLOW = "flow"
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"
    TOOL = "tool"
    CALL = "call"


@dataclass(frozen=True, order=True)
class Node:
    """A node: ``id`` is ``<kind>:<name>``, ``detail`` a second line (a stream's job)."""

    id: str
    kind: NodeKind
    label: str
    detail: str = ""


@dataclass(frozen=True, order=True)
class Edge:
    """A directed edge between two node ids."""

    source: str
    target: str
    kind: EdgeKind
    label: str = ""


@dataclass(frozen=True)
class Topology:
    """A domain's graph; nodes and edges sorted by id, so equal domains give equal graphs."""

    domain: str
    namespace: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def topic_id(topic: str) -> str:
    return f"topic:{topic}"


def build_topology(domain: Domain) -> Topology:
    """The graph of ``domain``; raises :class:`DomainError` for a stream the catalogue refuses."""
    nodes: dict[str, Node] = {}
    edges: set[Edge] = set()
    ns = domain.namespace

    def add(node: Node) -> str:
        nodes.setdefault(node.id, node)
        return node.id

    def topic(name: str) -> str:
        return add(Node(topic_id(name), NodeKind.TOPIC, name))

    def inbox(agent: str) -> str:
        name = inbox_topic(ns, agent)
        return add(Node(topic_id(name), NodeKind.INBOX, name))

    for tool in domain.tools:
        add(Node(f"tool:{tool.metadata.name}", NodeKind.TOOL, tool.metadata.name))
    for agent in domain.agents:
        name = agent.metadata.name
        me = add(Node(f"agent:{name}", NodeKind.AGENT, name))
        edges.add(Edge(inbox(name), me, EdgeKind.SUBSCRIBE))
        for subscribed in agent.spec.subscribe:
            edges.add(Edge(topic(subscribed.topic), me, EdgeKind.SUBSCRIBE))
        for published in agent.spec.publish:
            edges.add(Edge(me, topic(published.topic), EdgeKind.PUBLISH))
        for binding in agent.spec.tools:
            tool_node = add(Node(f"tool:{binding.ref}", NodeKind.TOOL, binding.ref))
            edges.add(Edge(me, tool_node, EdgeKind.TOOL, ", ".join(binding.allow)))
        for stream in agent.spec.streams:
            try:
                resolved = resolve_stream(stream)
            except StreamError as exc:
                raise DomainError(f"domain {domain.name}: agent {name}: {exc}") from None
            job = stream.job.rsplit(".", 1)[-1]
            flink = add(Node(f"stream:{name}/{stream.name}", NodeKind.STREAM, stream.name, job))
            for source in resolved.inputs:
                edges.add(Edge(topic(source), flink, EdgeKind.FLOW))
            for sink in resolved.outputs:
                edges.add(Edge(flink, topic(sink), EdgeKind.FLOW))
        for callee in declared_calls(domain, agent.metadata.name):
            edges.add(Edge(me, inbox(callee), EdgeKind.CALL, "A2A"))
    return Topology(
        domain=domain.name,
        namespace=ns,
        nodes=tuple(sorted(nodes.values())),
        edges=tuple(sorted(edges)),
    )


def declared_calls(domain: Domain, agent: str) -> list[str]:
    """The agents ``agent`` declares it calls (:data:`CALLS_ANNOTATION`), sorted."""
    found = domain.agent(agent)
    annotations = (found.metadata.annotations or {}) if found is not None else {}
    raw = annotations.get(CALLS_ANNOTATION, "")
    callees = sorted({c.strip() for c in raw.split(",") if c.strip()})
    for callee in callees:
        if re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", callee) is None or len(callee) > 63:
            raise DomainError(
                f"domain {domain.name}: agent {agent}: {CALLS_ANNOTATION}: "
                f"{callee!r} is not an agent name"
            )
    return callees


# --- Mermaid -----------------------------------------------------------------------------

_SHAPES = {
    NodeKind.TOPIC: ('[("', '")]'),
    NodeKind.INBOX: ('[("', '")]'),
    NodeKind.STREAM: ('[["', '"]]'),
    NodeKind.AGENT: ('(["', '"])'),
    NodeKind.TOOL: ('{{"', '"}}'),
}
_ARROWS = {
    EdgeKind.FLOW: "-->",
    EdgeKind.SUBSCRIBE: "-->",
    EdgeKind.PUBLISH: "-->",
    EdgeKind.TOOL: "-.->",
    EdgeKind.CALL: "==>",
}
CLASS_STYLES = {
    NodeKind.TOPIC: "fill:#fff4dd,stroke:#d9a21b,color:#3d2c00",
    NodeKind.INBOX: "fill:#f4f4f4,stroke:#8a8a8a,color:#333,stroke-dasharray:4 3",
    NodeKind.STREAM: "fill:#e6f0ff,stroke:#3b6fd8,color:#0d2a66",
    NodeKind.AGENT: "fill:#e3f7e8,stroke:#2f9e55,color:#0b3d1c",
    NodeKind.TOOL: "fill:#f6e8ff,stroke:#8e44c9,color:#3a0f5c",
}
"""Fill, stroke and text colours per node kind (Mermaid ``classDef``, SVG styles)."""


def mermaid_ids(topology: Topology) -> dict[str, str]:
    """Each node's Mermaid identifier: kind and name, ``[A-Za-z0-9_]`` only, unique."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for node in topology.nodes:
        base = re.sub(r"[^A-Za-z0-9_]", "_", f"{node.kind.value}_{node.id.split(':', 1)[1]}")
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        ids[node.id] = candidate
    return ids


def _text(label: str) -> str:
    return label.replace('"', "#quot;").replace("|", "#124;")


def to_mermaid(topology: Topology) -> str:
    """The topology as a Mermaid ``flowchart LR``: nodes, edges, then a class per kind."""
    ids = mermaid_ids(topology)
    lines = [
        "flowchart LR",
        f"  %% domain {topology.domain}, namespace {topology.namespace}",
    ]
    for node in topology.nodes:
        opening, closing = _SHAPES[node.kind]
        text = _text(node.label) + (f"<br/><i>{_text(node.detail)}</i>" if node.detail else "")
        lines.append(f"  {ids[node.id]}{opening}{text}{closing}")
    for edge in topology.edges:
        arrow = _ARROWS[edge.kind]
        label = f'|"{_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    for kind in NodeKind:
        lines.append(f"  classDef {kind.value} {CLASS_STYLES[kind]}")
    for kind in NodeKind:
        members = [ids[n.id] for n in topology.nodes if n.kind is kind]
        if members:
            lines.append(f"  class {','.join(members)} {kind.value}")
    return "\n".join(lines) + "\n"
