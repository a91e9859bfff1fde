"""City traffic: the road topology and the congestion rule, without Flink.

**Topology.** The job's ``neighbours`` parameter is a JSON object from a segment id to the ids
of the segments adjacent to it (``{"s1": ["s2"], "s2": ["s3"]}``). Adjacency is symmetric
whichever way it is written, so :func:`neighbour_pairs` returns each adjacent pair once, as
``(a, b)`` with ``a < b``.

**Congestion.** In one window, a segment is congested when its vehicle-weighted mean speed is
below ``speed_ratio`` times the free-flow speed, and at least ``min_vehicles`` vehicles were
counted (a lone slow car on an empty road is not congestion; a jam still moves vehicles).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence


class TopologyError(ValueError):
    """The ``neighbours`` parameter is not a JSON object of segment id to id list."""


def parse_neighbours(text: str) -> dict[str, list[str]]:
    """The ``neighbours`` JSON as a dict; :class:`TopologyError` if it has another shape."""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise TopologyError(f"neighbours: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise TopologyError("neighbours: expected a JSON object of segment id to id list")
    topology: dict[str, list[str]] = {}
    for segment, adjacent in value.items():
        if not isinstance(adjacent, list) or not all(isinstance(a, str) for a in adjacent):
            raise TopologyError(f"neighbours[{segment!r}]: expected a list of segment ids")
        topology[segment] = list(adjacent)
    return topology


def neighbour_pairs(topology: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Each adjacent pair once, ``(a, b)`` with ``a < b``, sorted; self-loops are ignored."""
    pairs = {
        (min(segment, other), max(segment, other))
        for segment, adjacent in topology.items()
        for other in adjacent
        if other != segment
    }
    return sorted(pairs)


def is_congested(
    mean_speed_kmh: float,
    vehicles: int,
    *,
    free_flow_kmh: float,
    speed_ratio: float,
    min_vehicles: int,
) -> bool:
    """The congestion rule for one segment and window (see the module docstring)."""
    return vehicles >= min_vehicles and mean_speed_kmh < speed_ratio * free_flow_kmh


def mean_speed(readings: Iterable[tuple[int, float]]) -> float | None:
    """Vehicle-weighted mean speed of ``(vehicle_count, avg_speed_kmh)`` readings.

    None when no vehicle was counted (the mean is undefined, not zero).
    """
    vehicles = 0
    weighted = 0.0
    for count, speed in readings:
        vehicles += count
        weighted += count * speed
    return weighted / vehicles if vehicles else None
