"""Simulated traffic signal controllers: phase timings, coordination, emergency pre-emption.

Each intersection of :mod:`.network` has a controller with two phases, ``east-west`` (the
avenue) and ``north-south`` (the street), each with a green time within its bounds. The
cycle is the sum of the greens plus :data:`LOST_SECONDS_PER_PHASE` (amber and all-red)
per phase. The controllers are the traffic domain's back end; :mod:`.signals_server`
exposes them to agents. Their rules:

- a timing names a known intersection and only its phases; each green stays within its
  phase's ``[min_green, max_green]``, and the cycle within :data:`MAX_CYCLE_SECONDS`;
- an intersection under pre-emption keeps its timing until the pre-emption is cleared;
- a pre-emption route is at least two intersections, each adjacent to the next, none
  already pre-empted for another vehicle; each gets the green along the route;
- the same idempotency key returns the first answer and changes nothing.

Every refusal is a :class:`SignalRefused` naming its rule. Not thread-safe: the MCP
server calls it from one event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise

from chorus_agents.traffic.network import INTERSECTIONS, adjacent

LOST_SECONDS_PER_PHASE = 5.0
MAX_CYCLE_SECONDS = 120.0
PHASES = ("east-west", "north-south")


class SignalRefused(ValueError):
    """A controller refused an operation; ``rule`` names the rule (``max_cycle``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Phase:
    name: str
    green_seconds: float
    min_green: float = 10.0
    max_green: float = 60.0


@dataclass(frozen=True)
class Timing:
    intersection_id: str
    phases: tuple[Phase, ...]
    cycle_seconds: float
    preempted_by: str | None
    preempted_phase: str | None
    time: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Preemption:
    vehicle_id: str
    route: tuple[str, ...]
    greens: tuple[tuple[str, str], ...]
    """(intersection, phase held green) along the route."""
    time: str
    idempotency_key: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _cycle(phases: Iterable[Phase]) -> float:
    return sum(p.green_seconds + LOST_SECONDS_PER_PHASE for p in phases)


def default_phases() -> tuple[Phase, ...]:
    """The plan every intersection starts with: 45 s on the avenue, 30 s on the street."""
    return (Phase("east-west", 45.0), Phase("north-south", 30.0))


class SignalControllers:
    """The timing and pre-emption state of every intersection."""

    def __init__(
        self,
        intersections: Iterable[str] = INTERSECTIONS,
        *,
        clock: Callable[[], str] = _now,
    ) -> None:
        self._clock = clock
        self._timings = {
            i: Timing(i, default_phases(), _cycle(default_phases()), None, None, clock())
            for i in intersections
        }
        self._preemptions: dict[str, Preemption] = {}
        self._timing_keys: dict[str, Timing] = {}
        self._preemption_keys: dict[str, Preemption] = {}

    def timing(self, intersection_id: str) -> Timing:
        timing = self._timings.get(intersection_id)
        if timing is None:
            known = ", ".join(sorted(self._timings))
            raise SignalRefused(
                "unknown_intersection", f"intersection {intersection_id!r} does not exist ({known})"
            )
        return timing

    def neighbour_timings(self, intersection_id: str) -> list[Timing]:
        """The timings of the intersections one segment away, for coordination."""
        self.timing(intersection_id)
        return [self._timings[i] for i in adjacent(intersection_id) if i in self._timings]

    def set_timing(
        self,
        intersection_id: str,
        greens: Mapping[str, float],
        *,
        idempotency_key: str | None = None,
    ) -> Timing:
        """Change some or all green times of an intersection; the others stay."""
        if idempotency_key is not None and idempotency_key in self._timing_keys:
            return self._timing_keys[idempotency_key]
        timing = self.timing(intersection_id)
        if timing.preempted_by is not None:
            raise SignalRefused(
                "preemption_active",
                f"intersection {intersection_id} is pre-empted for {timing.preempted_by}",
            )
        names = {p.name for p in timing.phases}
        unknown = sorted(set(greens) - names)
        if unknown or not greens:
            raise SignalRefused(
                "unknown_phase",
                f"intersection {intersection_id} has phases {', '.join(sorted(names))}, "
                f"not {', '.join(unknown) or 'none'}",
            )
        phases = []
        for phase in timing.phases:
            green = float(greens.get(phase.name, phase.green_seconds))
            if not phase.min_green <= green <= phase.max_green:
                raise SignalRefused(
                    "green_bounds",
                    f"{intersection_id} {phase.name} green {green:g} s is outside "
                    f"[{phase.min_green:g}, {phase.max_green:g}] s",
                )
            phases.append(replace(phase, green_seconds=green))
        cycle = _cycle(phases)
        if cycle > MAX_CYCLE_SECONDS:
            raise SignalRefused(
                "max_cycle",
                f"{intersection_id} cycle would be {cycle:g} s, over the maximum of "
                f"{MAX_CYCLE_SECONDS:g} s",
            )
        changed = replace(
            timing,
            phases=tuple(phases),
            cycle_seconds=cycle,
            time=self._clock(),
            idempotency_key=idempotency_key,
        )
        self._timings[intersection_id] = changed
        if idempotency_key is not None:
            self._timing_keys[idempotency_key] = changed
        return changed

    def preempt(
        self, vehicle_id: str, route: Sequence[str], *, idempotency_key: str | None = None
    ) -> Preemption:
        """Hold green along ``route`` for an emergency vehicle until :meth:`clear`."""
        if idempotency_key is not None and idempotency_key in self._preemption_keys:
            return self._preemption_keys[idempotency_key]
        if vehicle_id in self._preemptions:
            raise SignalRefused(
                "preemption_conflict", f"vehicle {vehicle_id} already has a pre-emption"
            )
        if len(route) < 2:
            raise SignalRefused("route", "a pre-emption route needs at least two intersections")
        for intersection in route:
            timing = self.timing(intersection)
            if timing.preempted_by is not None:
                raise SignalRefused(
                    "preemption_conflict",
                    f"intersection {intersection} is pre-empted for {timing.preempted_by}",
                )
        greens = []
        for here, there in pairwise(route):
            if there not in adjacent(here):
                raise SignalRefused("route", f"intersections {here} and {there} are not adjacent")
            # Same row letter: along the avenue; same column digit: along the street.
            greens.append((here, "east-west" if here[0] == there[0] else "north-south"))
        greens.append((route[-1], greens[-1][1]))
        now = self._clock()
        for intersection, phase in greens:
            self._timings[intersection] = replace(
                self._timings[intersection],
                preempted_by=vehicle_id,
                preempted_phase=phase,
                time=now,
            )
        preemption = Preemption(vehicle_id, tuple(route), tuple(greens), now, idempotency_key)
        self._preemptions[vehicle_id] = preemption
        if idempotency_key is not None:
            self._preemption_keys[idempotency_key] = preemption
        return preemption

    def clear(self, vehicle_id: str) -> Preemption:
        """End a vehicle's pre-emption: its intersections go back to their timing."""
        preemption = self._preemptions.pop(vehicle_id, None)
        if preemption is None:
            raise SignalRefused("unknown_preemption", f"vehicle {vehicle_id!r} has no pre-emption")
        now = self._clock()
        for intersection in preemption.route:
            self._timings[intersection] = replace(
                self._timings[intersection], preempted_by=None, preempted_phase=None, time=now
            )
        return preemption

    def preemptions(self) -> list[Preemption]:
        return [self._preemptions[k] for k in sorted(self._preemptions)]
