"""The traffic job's topology and congestion rule."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
traffic: Any = importlib.import_module("chorus_flink.scoring.traffic")


def test_neighbour_pairs_are_symmetric_and_unique() -> None:
    topology = traffic.parse_neighbours(
        '{"s2": ["s1", "s3"], "s1": ["s2"], "s3": ["s3"], "s4": ["s2"]}'
    )
    assert traffic.neighbour_pairs(topology) == [("s1", "s2"), ("s2", "s3"), ("s2", "s4")]


def test_empty_topology() -> None:
    assert traffic.parse_neighbours("") == {}
    assert traffic.neighbour_pairs(traffic.parse_neighbours("{}")) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"s1": "s2"}', r"neighbours\['s1'\]: expected a list"),
        ('{"s1": [2]}', r"neighbours\['s1'\]"),
        ("{s1: }", "not JSON"),
    ],
)
def test_bad_topologies(text: str, problem: str) -> None:
    with pytest.raises(traffic.TopologyError, match=problem):
        traffic.parse_neighbours(text)


def test_congestion_rule_boundaries() -> None:
    rule = {"free_flow_kmh": 50.0, "speed_ratio": 0.5, "min_vehicles": 10}
    assert traffic.is_congested(24.9, 10, **rule)
    assert not traffic.is_congested(25.0, 10, **rule)  # not below half of free flow
    assert not traffic.is_congested(10.0, 9, **rule)  # too few vehicles
    assert traffic.is_congested(0.0, 100, **rule)


def test_mean_speed_is_vehicle_weighted() -> None:
    assert traffic.mean_speed([(10, 20.0), (30, 40.0)]) == pytest.approx(35.0)
    assert traffic.mean_speed([(0, 50.0)]) is None
    assert traffic.mean_speed([]) is None
