"""A :class:`~chorus_agents.dev.topology.Topology` drawn as a standalone SVG 1.1 document.

A small layered layout, no Graphviz needed:

1. cycles are broken by a depth-first search in node-id order (its back edges are drawn
   but do not count for the layers);
2. each node's layer is the length of the longest path reaching it (sources left);
3. within a layer nodes start in (kind, id) order, then a few barycenter sweeps (left to
   right, then right to left) order each layer by the mean position of its neighbours in
   the layers already placed, which removes most crossings;
4. boxes per kind (pills for topics, double boxes for streams, rounded boxes for agents,
   ellipses for tools), cubic edges with arrow heads and labels.

Output is a function of the topology only: same graph, same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from chorus_agents.dev.topology import CLASS_STYLES, EdgeKind, Node, NodeKind, Topology

CHAR_WIDTH = 7.0
"""Approximate width of a character of the 12px sans-serif labels."""
NODE_HEIGHT = 40.0
ROW_GAP = 28.0
LAYER_GAP = 90.0
MARGIN = 24.0
SWEEPS = 4
_KIND_ORDER = {kind: index for index, kind in enumerate(NodeKind)}


@dataclass(frozen=True)
class Box:
    """Where a node is drawn: centre and size."""

    x: float
    y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Layout:
    """Node boxes by id, the layers (ids, top to bottom), the canvas size."""

    boxes: dict[str, Box]
    layers: tuple[tuple[str, ...], ...]
    width: float
    height: float


def _back_edges(topology: Topology) -> set[tuple[str, str]]:
    successors: dict[str, list[str]] = defaultdict(list)
    for edge in topology.edges:
        successors[edge.source].append(edge.target)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for start in (n.id for n in topology.nodes):
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(sorted(successors[start])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(successors[child]))))
    return back


def layers(topology: Topology) -> dict[str, int]:
    """Each node's layer: the longest path to it over the edges that close no cycle."""
    back = _back_edges(topology)
    forward = sorted(
        {(e.source, e.target) for e in topology.edges if (e.source, e.target) not in back}
    )
    layer = {n.id: 0 for n in topology.nodes}
    # Longest path by relaxation: at most one round per node in an acyclic graph.
    for _ in range(len(layer)):
        changed = False
        for source, target in forward:
            if layer[target] < layer[source] + 1:
                layer[target] = layer[source] + 1
                changed = True
        if not changed:
            break
    return layer


def _barycenter_order(
    nodes: list[str], position: dict[str, float], neighbours: dict[str, set[str]]
) -> list[str]:
    """``nodes`` sorted by the mean position of their placed neighbours (stable)."""
    current = {node: (index + 0.5) / len(nodes) for index, node in enumerate(nodes)}

    def key(node: str) -> tuple[float, float]:
        known = [position[n] for n in neighbours[node] if n in position]
        return (sum(known) / len(known) if known else current[node], current[node])

    return sorted(nodes, key=key)


def _node_width(node: Node) -> float:
    text = max(len(node.label), len(node.detail))
    padding = 40.0 if node.kind in (NodeKind.TOOL, NodeKind.TOPIC, NodeKind.INBOX) else 24.0
    return max(80.0, text * CHAR_WIDTH + padding)


def layout(topology: Topology) -> Layout:
    """Positions every node (see the module docstring)."""
    of_node = {n.id: n for n in topology.nodes}
    layer = layers(topology)
    count = max(layer.values(), default=-1) + 1
    ordered: list[list[str]] = [[] for _ in range(count)]
    for node in sorted(topology.nodes, key=lambda n: (_KIND_ORDER[n.kind], n.id)):
        ordered[layer[node.id]].append(node.id)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for edge in topology.edges:
        if edge.source != edge.target:
            neighbours[edge.source].add(edge.target)
            neighbours[edge.target].add(edge.source)

    def sweep(indices: range, placed_before: bool) -> None:
        for i in indices:
            # Positions as fractions of their layer's height, so layers of different
            # sizes compare.
            position = {
                node: (index + 0.5) / len(nodes)
                for j, nodes in enumerate(ordered)
                if (j < i if placed_before else j > i)
                for index, node in enumerate(nodes)
            }
            ordered[i] = _barycenter_order(ordered[i], position, neighbours)

    for _ in range(SWEEPS):
        sweep(range(1, count), placed_before=True)
        sweep(range(count - 2, -1, -1), placed_before=False)

    widths = [max((_node_width(of_node[n]) for n in nodes), default=0.0) for nodes in ordered]
    tallest = max((len(nodes) for nodes in ordered), default=0)
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(0, tallest - 1) * ROW_GAP
    boxes: dict[str, Box] = {}
    x = MARGIN
    for i, nodes in enumerate(ordered):
        column = len(nodes) * NODE_HEIGHT + max(0, len(nodes) - 1) * ROW_GAP
        top = (height - column) / 2
        for index, node_id in enumerate(nodes):
            y = top + index * (NODE_HEIGHT + ROW_GAP) + NODE_HEIGHT / 2
            boxes[node_id] = Box(x + widths[i] / 2, y, _node_width(of_node[node_id]), NODE_HEIGHT)
        x += widths[i] + LAYER_GAP
    width = max(x - LAYER_GAP + MARGIN, 2 * MARGIN)
    return Layout(
        boxes=boxes,
        layers=tuple(tuple(nodes) for nodes in ordered),
        width=width,
        height=max(height, 2 * MARGIN),
    )


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _style(kind: NodeKind) -> dict[str, str]:
    return dict(part.split(":", 1) for part in CLASS_STYLES[kind].split(","))


def _shape(node: Node, box: Box) -> str:
    style = _style(node.kind)
    paint = f'fill="{style["fill"]}" stroke="{style["stroke"]}" stroke-width="1.5"'
    if "stroke-dasharray" in style:
        paint += f' stroke-dasharray="{style["stroke-dasharray"]}"'
    x, y, w, h = box.left, box.y - box.height / 2, box.width, box.height
    if node.kind is NodeKind.TOOL:
        return (
            f'<ellipse cx="{_n(box.x)}" cy="{_n(box.y)}" rx="{_n(w / 2)}" ry="{_n(h / 2)}" '
            f"{paint}/>"
        )
    radius = {NodeKind.TOPIC: h / 2, NodeKind.INBOX: h / 2, NodeKind.AGENT: 8.0}.get(node.kind, 2)
    rect = (
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" '
        f'rx="{_n(radius)}" {paint}/>'
    )
    if node.kind is NodeKind.STREAM:
        rect += (
            f'<rect x="{_n(x + 4)}" y="{_n(y + 4)}" width="{_n(w - 8)}" height="{_n(h - 8)}" '
            f'rx="1" fill="none" stroke="{style["stroke"]}" stroke-width="0.8"/>'
        )
    return rect


def _label(node: Node, box: Box) -> str:
    colour = _style(node.kind)["color"]
    if not node.detail:
        return (
            f'<text x="{_n(box.x)}" y="{_n(box.y + 4)}" fill="{colour}">{escape(node.label)}</text>'
        )
    return (
        f'<text x="{_n(box.x)}" y="{_n(box.y - 3)}" fill="{colour}">{escape(node.label)}</text>'
        f'<text x="{_n(box.x)}" y="{_n(box.y + 11)}" fill="{colour}" font-size="10" '
        f'font-style="italic">{escape(node.detail)}</text>'
    )


_EDGE_STYLE = {
    EdgeKind.FLOW: 'stroke="#3b6fd8"',
    EdgeKind.SUBSCRIBE: 'stroke="#555"',
    EdgeKind.PUBLISH: 'stroke="#2f9e55"',
    EdgeKind.TOOL: 'stroke="#8e44c9" stroke-dasharray="5 4"',
    EdgeKind.CALL: 'stroke="#c0392b" stroke-width="2.2"',
}


def to_svg(topology: Topology) -> str:
    """The topology as an SVG document: one ``<g class="node ...">`` per node, one
    ``<g class="edge ...">`` per edge, ids derived from the node ids."""
    placed = layout(topology)
    boxes = placed.boxes
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
            f'width="{_n(placed.width)}" height="{_n(placed.height)}" '
            f'viewBox="0 0 {_n(placed.width)} {_n(placed.height)}" '
            f'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        ),
        f"<title>{escape(f'chorus topology: {topology.domain} ({topology.namespace})')}</title>",
        "<defs>",
        (
            '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        ),
        "</defs>",
        f'<rect width="{_n(placed.width)}" height="{_n(placed.height)}" fill="#ffffff"/>',
        '<g class="edges" fill="none">',
    ]
    for index, edge in enumerate(topology.edges):
        start, end = boxes[edge.source], boxes[edge.target]
        x1, y1, x2, y2 = start.right, start.y, end.left, end.y
        if end.x > start.x:
            bend = max(30.0, (x2 - x1) / 2)
            d = (
                f"M{_n(x1)},{_n(y1)} C{_n(x1 + bend)},{_n(y1)} "
                f"{_n(x2 - bend)},{_n(y2)} {_n(x2)},{_n(y2)}"
            )
            mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
        else:  # a back edge (a cycle) or within a layer: loop below both nodes
            low = max(start.y, end.y) + NODE_HEIGHT
            d = (
                f"M{_n(x1)},{_n(y1)} C{_n(x1 + 60)},{_n(low + 30)} "
                f"{_n(x2 - 60)},{_n(low + 30)} {_n(x2)},{_n(y2)}"
            )
            mid_x, mid_y = (x1 + x2) / 2, low + 12
        label = ""
        if edge.label:
            label = (
                f'<text x="{_n(mid_x)}" y="{_n(mid_y - 4)}" fill="#444" stroke="none" '
                f'font-size="10">{escape(edge.label)}</text>'
            )
        parts.append(
            f'<g class="edge {edge.kind.value}" id="edge-{index}" '
            f"data-source={quoteattr(edge.source)} data-target={quoteattr(edge.target)}>"
            f'<path d="{d}" {_EDGE_STYLE[edge.kind]} marker-end="url(#arrow)"/>{label}</g>'
        )
    parts.append("</g>")
    parts.append('<g class="nodes" text-anchor="middle">')
    for node in topology.nodes:
        box = boxes[node.id]
        parts.append(
            f'<g class="node {node.kind.value}" data-id={quoteattr(node.id)}>'
            f"<title>{escape(node.id)}</title>{_shape(node, box)}{_label(node, box)}</g>"
        )
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
