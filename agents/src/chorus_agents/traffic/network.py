"""The reference road network: six signalised intersections on a two-by-three grid.

::

    A1 ──► A2 ──► A3        rows are one-way eastbound avenues,
    │      │      │         columns one-way southbound streets;
    ▼      ▼      ▼         a segment is named after the intersections
    B1 ──► B2 ──► B3        it runs from and to ("A1-A2").

A segment's *upstream* neighbours feed it (they end where it starts), its *downstream*
neighbours take its traffic (they start where it ends); :data:`NEIGHBOURS` is both,
sorted. A queue behind an accident spills back onto the upstream neighbours. The Flink
traffic job uses the same relation (it is data, so a job or a test can copy it).
"""

from __future__ import annotations

from collections.abc import Mapping

INTERSECTIONS: tuple[str, ...] = ("A1", "A2", "A3", "B1", "B2", "B3")

SEGMENTS: Mapping[str, tuple[str, str]] = {
    "A1-A2": ("A1", "A2"),
    "A2-A3": ("A2", "A3"),
    "B1-B2": ("B1", "B2"),
    "B2-B3": ("B2", "B3"),
    "A1-B1": ("A1", "B1"),
    "A2-B2": ("A2", "B2"),
    "A3-B3": ("A3", "B3"),
}
"""Every segment: the intersection it leaves from and the one it arrives at."""

UPSTREAM: Mapping[str, tuple[str, ...]] = {
    "A1-A2": (),
    "A2-A3": ("A1-A2",),
    "B1-B2": ("A1-B1",),
    "B2-B3": ("A2-B2", "B1-B2"),
    "A1-B1": (),
    "A2-B2": ("A1-A2",),
    "A3-B3": ("A2-A3",),
}
"""The segments whose traffic flows into each segment."""

NEIGHBOURS: Mapping[str, tuple[str, ...]] = {
    "A1-A2": ("A2-A3", "A2-B2"),
    "A2-A3": ("A1-A2", "A3-B3"),
    "B1-B2": ("A1-B1", "B2-B3"),
    "B2-B3": ("A2-B2", "B1-B2"),
    "A1-B1": ("B1-B2",),
    "A2-B2": ("A1-A2", "B2-B3"),
    "A3-B3": ("A2-A3",),
}
"""Every segment's upstream and downstream segments, sorted."""


def adjacent(intersection: str) -> tuple[str, ...]:
    """The intersections one segment away from ``intersection``, either way, sorted."""
    return tuple(
        sorted(
            {b for a, b in SEGMENTS.values() if a == intersection}
            | {a for a, b in SEGMENTS.values() if b == intersection}
        )
    )
