"""The road network: the neighbour relation written as data agrees with the segments."""

from __future__ import annotations

import pytest
from chorus_agents.traffic.network import INTERSECTIONS, NEIGHBOURS, SEGMENTS, UPSTREAM, adjacent


@pytest.mark.unit
def test_upstream_and_neighbours_follow_from_the_segments() -> None:
    assert set(UPSTREAM) == set(NEIGHBOURS) == set(SEGMENTS)
    for segment, (origin, end) in SEGMENTS.items():
        upstream = sorted(s for s, (_, b) in SEGMENTS.items() if b == origin)
        downstream = sorted(s for s, (a, _) in SEGMENTS.items() if a == end)
        assert list(UPSTREAM[segment]) == upstream
        assert list(NEIGHBOURS[segment]) == sorted(upstream + downstream)
        assert {origin, end} <= set(INTERSECTIONS)
    # Neighbourhood is symmetric.
    assert all(segment in NEIGHBOURS[n] for segment in NEIGHBOURS for n in NEIGHBOURS[segment])
    assert adjacent("B2") == ("A2", "B1", "B3")
