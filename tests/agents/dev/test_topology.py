"""The graph of a domain: exact nodes and edges, Mermaid structure, SVG, the CLI."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from chorus_agents.cli import app
from chorus_agents.dev.manifests import DomainError, load_domain
from chorus_agents.dev.svg import layers, layout, to_svg
from chorus_agents.dev.topology import (
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Topology,
    build_topology,
    mermaid_ids,
    to_mermaid,
)
from typer.testing import CliRunner

from tests.agents.dev.test_manifests import AGENT, SHOP, write

SVG = "{http://www.w3.org/2000/svg}"
T, IN, S, A, L = NodeKind.TOPIC, NodeKind.INBOX, NodeKind.STREAM, NodeKind.AGENT, NodeKind.TOOL
runner = CliRunner()


def shop() -> Topology:
    return build_topology(load_domain(SHOP))


@pytest.mark.unit
def test_the_fixture_domain_has_exactly_the_expected_graph() -> None:
    graph = shop()
    assert {(n.id, n.kind) for n in graph.nodes} == {
        ("agent:analyst", A),
        ("agent:risk", A),
        ("agent:trader", A),
        ("tool:exchange", L),
        ("stream:analyst/signals", S),
        ("topic:chorus.shop.a2a.analyst.inbox", IN),
        ("topic:chorus.shop.a2a.risk.inbox", IN),
        ("topic:chorus.shop.a2a.trader.inbox", IN),
        ("topic:trading.trades", T),
        ("topic:trading.signals", T),
        ("topic:trading.trades.dlq", T),
        ("topic:shop.proposals", T),
        ("topic:shop.orders", T),
    }
    flow, sub, pub = EdgeKind.FLOW, EdgeKind.SUBSCRIBE, EdgeKind.PUBLISH
    assert set(graph.edges) == {
        Edge("topic:trading.trades", "stream:analyst/signals", flow),
        Edge("stream:analyst/signals", "topic:trading.signals", flow),
        Edge("stream:analyst/signals", "topic:trading.trades.dlq", flow),
        Edge("topic:trading.signals", "agent:analyst", sub),
        Edge("topic:chorus.shop.a2a.analyst.inbox", "agent:analyst", sub),
        Edge("topic:chorus.shop.a2a.risk.inbox", "agent:risk", sub),
        Edge("topic:chorus.shop.a2a.trader.inbox", "agent:trader", sub),
        Edge("agent:analyst", "topic:shop.proposals", pub),
        Edge("topic:shop.proposals", "agent:trader", sub),
        Edge("agent:trader", "topic:shop.orders", pub),
        Edge("agent:analyst", "tool:exchange", EdgeKind.TOOL, "get_quote, get_positions"),
        Edge("agent:trader", "tool:exchange", EdgeKind.TOOL, "place_order, get_quote"),
        Edge("agent:trader", "topic:chorus.shop.a2a.risk.inbox", EdgeKind.CALL, "A2A"),
    }
    assert graph.node("stream:analyst/signals") == Node(
        "stream:analyst/signals", S, "signals", "trading"
    )


@pytest.mark.unit
def test_a_stream_the_catalogue_refuses_is_an_error_naming_the_agent(tmp_path: Path) -> None:
    text = AGENT % "alpha" + "  streams:\n    - {name: s, job: chorus_flink.jobs.nope}\n"
    root = write(tmp_path / "d", {"a.yaml": text})
    with pytest.raises(DomainError, match=r"agent alpha: stream 's': job .* does not exist"):
        build_topology(load_domain(root))


NODE_LINE = re.compile(r'^  (\w+)(\[\(|\[\[|\(\[|\{\{)"(.*)"(\)\]|\]\]|\]\)|\}\})$')
EDGE_LINE = re.compile(r'^  (\w+) (-->|-\.->|==>)(?:\|"([^"|]*)"\|)? (\w+)$')


@pytest.mark.unit
def test_mermaid_declares_every_node_once_and_edges_only_between_them() -> None:
    graph = shop()
    text = to_mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared: dict[str, str] = {}
    edges: list[tuple[str, str, str, str | None]] = []
    classes: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("  %%") or line.startswith("  classDef "):
            continue
        if node := NODE_LINE.match(line):
            assert node.group(1) not in declared
            declared[node.group(1)] = node.group(3)
        elif edge := EDGE_LINE.match(line):
            edges.append((edge.group(1), edge.group(4), edge.group(2), edge.group(3)))
        elif line.startswith("  class "):
            members, kind = line.removeprefix("  class ").split(" ")
            classes.update({m: kind for m in members.split(",")})
        else:
            pytest.fail(f"not a Mermaid line this renderer writes: {line!r}")
    ids = mermaid_ids(graph)
    assert set(declared) == set(ids.values())
    assert len(edges) == len(graph.edges)
    assert all(a in declared and b in declared for a, b, _, _ in edges)
    assert classes == {ids[n.id]: n.kind.value for n in graph.nodes}
    assert ("agent_trader", "inbox_chorus_shop_a2a_risk_inbox", "==>", "A2A") in edges
    assert declared["stream_analyst_signals"] == "signals<br/><i>trading</i>"


@pytest.mark.unit
def test_mermaid_ids_stay_unique_when_names_collide() -> None:
    graph = Topology("d", "d", (Node("topic:a.b", T, "a.b"), Node("topic:a_b", T, "a_b")), ())
    assert mermaid_ids(graph) == {"topic:a.b": "topic_a_b", "topic:a_b": "topic_a_b_2"}


@pytest.mark.unit
def test_the_svg_is_well_formed_with_one_element_per_node_and_edge() -> None:
    graph = shop()
    text = to_svg(graph)
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    width, height = (float(v) for v in root.get("viewBox", "").split()[2:])
    assert width > 0 and height > 0
    groups = list(root.iter(f"{SVG}g"))
    nodes = [g for g in groups if (g.get("class") or "").startswith("node ")]
    edges = [g for g in groups if (g.get("class") or "").startswith("edge ")]
    assert sorted(str(g.get("data-id")) for g in nodes) == sorted(n.id for n in graph.nodes)
    assert [(g.get("data-source"), g.get("data-target")) for g in edges] == [
        (e.source, e.target) for e in graph.edges
    ]
    assert {g.get("class") for g in nodes} == {f"node {k.value}" for k in NodeKind}
    assert all(g.find(f"{SVG}path") is not None for g in edges)
    # every node lies inside the canvas
    for box in layout(graph).boxes.values():
        assert box.left >= 0 and box.right <= width
        assert box.y - box.height / 2 >= 0 and box.y + box.height / 2 <= height


@pytest.mark.unit
def test_layers_follow_the_longest_path_and_survive_cycles() -> None:
    layer = layers(shop())
    assert layer["topic:trading.trades"] == 0
    assert layer["stream:analyst/signals"] == 1
    assert layer["topic:trading.signals"] == 2
    assert layer["agent:analyst"] == 3
    assert layer["agent:trader"] == 5
    assert layer["topic:chorus.shop.a2a.risk.inbox"] == 6
    cyclic = Topology(
        "c",
        "c",
        (Node("agent:a", A, "a"), Node("topic:x", T, "x"), Node("topic:y", T, "y")),
        (
            Edge("agent:a", "topic:x", EdgeKind.PUBLISH),
            Edge("topic:x", "agent:a", EdgeKind.SUBSCRIBE),
            Edge("topic:y", "agent:a", EdgeKind.SUBSCRIBE),
        ),
    )
    assert layers(cyclic) == {"agent:a": 1, "topic:x": 2, "topic:y": 0}
    ET.fromstring(to_svg(cyclic).split("\n", 1)[1])


@pytest.mark.unit
def test_the_barycenter_pass_uncrosses_parallel_chains() -> None:
    # two chains a1 -> b1, a2 -> b2 whose second layer starts in the crossing order
    nodes = (
        Node("agent:a1", A, "a1"),
        Node("agent:a2", A, "a2"),
        Node("topic:z-first", T, "b1"),
        Node("topic:a-second", T, "b2"),
    )
    edges = (
        Edge("agent:a1", "topic:z-first", EdgeKind.PUBLISH),
        Edge("agent:a2", "topic:a-second", EdgeKind.PUBLISH),
    )
    placed = layout(Topology("x", "x", nodes, edges))
    assert placed.layers == (("agent:a1", "agent:a2"), ("topic:z-first", "topic:a-second"))


@pytest.mark.unit
def test_output_is_deterministic() -> None:
    assert to_mermaid(shop()) == to_mermaid(shop())
    assert to_svg(shop()) == to_svg(shop())


@pytest.mark.unit
def test_chorus_dev_topology_prints_mermaid_and_writes_svg(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dev", "topology", "shop", "--deploy-dir", str(SHOP)])
    assert result.exit_code == 0, result.output
    assert result.stdout == to_mermaid(shop())
    out = tmp_path / "shop.svg"
    result = runner.invoke(
        app, ["dev", "topology", "shop", "-d", str(SHOP), "--format", "svg", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text() == to_svg(shop())
    missing = runner.invoke(app, ["dev", "topology", "shop", "-d", str(tmp_path / "none")])
    assert missing.exit_code == 2
    assert "none: no such file or directory" in missing.stderr


@pytest.mark.unit
def test_the_domain_is_found_under_agents_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "agents" / "tiny" / "deploy", {"a.yaml": AGENT % "alpha"})
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = runner.invoke(app, ["dev", "topology", "tiny"])
    assert result.exit_code == 0, result.output
    assert 'agent_alpha(["alpha"])' in result.stdout
    assert "inbox_chorus_tiny_a2a_alpha_inbox --> agent_alpha" in result.stdout


TRADING = Path(__file__).resolve().parents[3] / "agents" / "trading" / "deploy"


@pytest.mark.unit
def test_the_trading_domain_loads_and_draws() -> None:
    domain = load_domain(TRADING)
    assert (domain.name, domain.namespace) == ("trading", "trading")
    graph = build_topology(domain)
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)
    for agent in domain.agents:
        inbox = f"topic:chorus.trading.a2a.{agent.metadata.name}.inbox"
        assert Edge(inbox, f"agent:{agent.metadata.name}", EdgeKind.SUBSCRIBE) in graph.edges
    assert "tool:exchange" in ids
    streams = [n.id for n in graph.nodes if n.kind is S and n.detail == "trading"]
    assert len(streams) == 1
    assert Edge("topic:trading.trades", streams[0], EdgeKind.FLOW) in graph.edges
    assert Edge(streams[0], "topic:trading.signals", EdgeKind.FLOW) in graph.edges
    assert any(
        e.source == "topic:trading.signals" and e.kind is EdgeKind.SUBSCRIBE for e in graph.edges
    )
    svg = ET.fromstring(to_svg(graph).split("\n", 1)[1])
    drawn = [g for g in svg.iter(f"{SVG}g") if (g.get("class") or "").startswith("node ")]
    assert len(drawn) == len(graph.nodes)
