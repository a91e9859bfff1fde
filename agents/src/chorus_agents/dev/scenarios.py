"""What ``chorus dev up <domain>`` feeds each domain: its generator, incidents and pace (pure).

A :class:`Scenario` names the generator's topic, how long a run is in event time, how much
faster than real time it is fed by default, and how to recognise a signal about an
incident's entity (a symbol, a customer, a machine, ...). :meth:`Scenario.plan` gives the
incidents to inject (none for a quiet run), the tool calls that set the scene before the
feed (the trading desk's position), and the records, in event-time order, each with its
offset from the scenario's start. Generators are imported only when a plan is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""Event time zero of every scenario."""


class _Generated(Protocol):
    @property
    def event_time(self) -> datetime: ...

    def record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Incident:
    """An injected incident: its generator's id, the entity it is about, when it starts."""

    incident_id: str
    entity: str
    at_seconds: float


@dataclass(frozen=True)
class ToolCall:
    """A call made to a domain's tool before the feed starts (setting the scene)."""

    tool: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedRecord:
    """One generated record: seconds of event time since :data:`START`, key, value."""

    offset: float
    key: str
    value: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What one run feeds: incidents, set-up calls, and the records (made lazily)."""

    incidents: tuple[Incident, ...]
    setup: tuple[ToolCall, ...]
    records: Callable[[], Iterator[FeedRecord]]


@dataclass(frozen=True)
class Scenario:
    """A domain's local run; see the module docstring."""

    domain: str
    topic: str
    seconds: float
    """Event-time length of a run."""
    speed: float
    """Default pace: event-time seconds fed per real second."""
    key_field: str
    routine_kinds: frozenset[str]
    """Signal kinds emitted for every entity all the time (``vwap``): not a detection."""
    make: Callable[[float, bool], Plan]

    def plan(self, *, quiet: bool = False, seconds: float | None = None) -> Plan:
        """The run's plan: with ``quiet`` no incident is injected (and no scene set)."""
        return self.make(seconds or self.seconds, quiet)

    def mentions(self, signal: Mapping[str, Any], entity: str) -> bool:
        """Whether ``signal`` (a CloudEvents envelope) is about ``entity``: its subject, or
        a value of its data (one level of lists included), is the entity."""
        if signal.get("subject") == entity:
            return True
        data = signal.get("data")
        if not isinstance(data, Mapping):
            return False
        for value in data.values():
            if value == entity or (isinstance(value, list) and entity in value):
                return True
        return False

    def detects(self, signal: Mapping[str, Any], incident: Incident) -> bool:
        """A signal that detects ``incident``: about its entity and not a routine kind."""
        return signal.get("kind") not in self.routine_kinds and self.mentions(
            signal, incident.entity
        )


def _feed(items: Iterable[_Generated], key_field: str) -> Iterator[FeedRecord]:
    for item in items:
        value = item.record()
        offset = (item.event_time - START).total_seconds()
        yield FeedRecord(offset=offset, key=str(value[key_field]), value=value)


def _trading(seconds: float, quiet: bool) -> Plan:
    from chorus_agents.trading.exchange_server import DEFAULT_PRICES
    from chorus_agents.trading.generator import FlashCrash, trades

    crashes = () if quiet else (FlashCrash("ACME", at_seconds=round(seconds / 2)),)
    # The desk holds the crashing symbol, so the analyst has a position to reduce.
    setup = tuple(
        ToolCall("exchange", "place_order", {"symbol": c.symbol, "side": "buy", "quantity": 1000})
        for c in crashes
    )
    return Plan(
        incidents=tuple(Incident(c.incident_id, c.symbol, c.at_seconds) for c in crashes),
        setup=setup,
        records=lambda: _feed(
            trades(DEFAULT_PRICES, seconds=seconds, start=START, incidents=crashes), "symbol"
        ),
    )


def _support(seconds: float, quiet: bool) -> Plan:
    from chorus_agents.support.generator import CUSTOMER_IDS, AngryCustomer, messages

    # Two unhappy customers: the first's latest order has shipped (the billing specialist's
    # model refunds it), the second's has not (the model declines: it can be cancelled).
    angry = (
        ()
        if quiet
        else (
            AngryCustomer(CUSTOMER_IDS[0], at_seconds=300.0),
            AngryCustomer(CUSTOMER_IDS[2], at_seconds=900.0),
        )
    )
    return Plan(
        incidents=tuple(Incident(a.incident_id, a.customer_id, a.at_seconds) for a in angry),
        setup=(),
        records=lambda: _feed(
            messages(seconds=seconds, start=START, incidents=angry), "conversation_id"
        ),
    )


def _maintenance(seconds: float, quiet: bool) -> Plan:
    from chorus_agents.maintenance.generator import MACHINES, BearingFailure, telemetry

    # A two-minute ramp: fast enough that three readings in a row stand out of their
    # 20-reading history (the Flink job's alert); a slow ramp drags the history along.
    failures = (
        ()
        if quiet
        else (BearingFailure(MACHINES[0], at_seconds=round(seconds / 4), ramp_seconds=120.0),)
    )
    # The failing machine's production on the scenario's day, inside the repair window
    # that opens at the first full hour after the alert (10:00; an hour long at least,
    # whichever failure mode the diagnosis finds): a firm run (a committed one) that the
    # scheduler leaves to the planner, and a run it moves.
    day = START.replace(hour=0, minute=0)
    runs = (("run-b", 600, 630, True), ("run-a", 630, 750, False))
    setup = tuple(
        ToolCall(
            "cmms",
            "plan_production_slot",
            {
                "slot_id": f"{f.machine_id}-{name}",
                "machine_id": f.machine_id,
                "product": "body-panel",
                "start": (day + timedelta(minutes=begin)).isoformat(timespec="minutes"),
                "end": (day + timedelta(minutes=end)).isoformat(timespec="minutes"),
                "firm": firm,
            },
        )
        for f in failures
        for name, begin, end, firm in runs
    )
    return Plan(
        incidents=tuple(Incident(f.incident_id, f.machine_id, f.at_seconds) for f in failures),
        setup=setup,
        records=lambda: _feed(
            telemetry(seconds=seconds, start=START, incidents=failures), "machine_id"
        ),
    )


def _traffic(seconds: float, quiet: bool) -> Plan:
    from chorus_agents.traffic.generator import Accident, readings
    from chorus_agents.traffic.network import SEGMENTS, UPSTREAM

    # The first segment with an upstream neighbour: its queue spills back onto it, and the
    # two congested neighbours are the Flink job's incident.
    segment = next(s for s in sorted(SEGMENTS) if UPSTREAM[s])
    accidents = () if quiet else (Accident(segment, at_seconds=round(seconds / 4)),)
    return Plan(
        incidents=tuple(Incident(a.incident_id, a.segment_id, a.at_seconds) for a in accidents),
        setup=(),
        records=lambda: _feed(
            readings(seconds=seconds, start=START, incidents=accidents), "segment_id"
        ),
    )


def _icu(seconds: float, quiet: bool) -> Plan:
    from chorus_agents.icu.generator import PATIENT_IDS, SepsisDeterioration, vitals

    cases = () if quiet else (SepsisDeterioration(PATIENT_IDS[0], at_seconds=600.0),)
    return Plan(
        incidents=tuple(Incident(c.incident_id, c.patient_id, c.at_seconds) for c in cases),
        setup=(),
        records=lambda: _feed(vitals(seconds=seconds, start=START, incidents=cases), "patient_id"),
    )


SCENARIOS: Mapping[str, Scenario] = {
    s.domain: s
    for s in (
        Scenario("trading", "trading.trades", 180.0, 3.0, "symbol", frozenset({"vwap"}), _trading),
        Scenario(
            "support", "support.messages", 2700.0, 60.0, "conversation_id", frozenset(), _support
        ),
        Scenario(
            "maintenance",
            "maintenance.telemetry",
            600.0,
            20.0,
            "machine_id",
            # An isolated anomaly is sensor noise on every machine now and then: detection
            # is the job's alert (consecutive anomalies).
            frozenset({"anomaly"}),
            _maintenance,
        ),
        Scenario("traffic", "traffic.readings", 600.0, 20.0, "segment_id", frozenset(), _traffic),
        Scenario(
            "icu", "icu.vitals", 3600.0, 120.0, "patient_id", frozenset({"news2_score"}), _icu
        ),
    )
}
"""Every domain's scenario, by domain name."""


def scenario(domain: str) -> Scenario:
    """The scenario of ``domain``; a KeyError lists the domains there are."""
    if domain not in SCENARIOS:
        raise KeyError(f"no scenario for domain {domain!r}; there are: {', '.join(SCENARIOS)}")
    return SCENARIOS[domain]
