"""The report at the end of ``chorus dev up``: was every incident detected and acted on? (pure)

Inputs are what the run observed: the incidents with the wall time their first record was
fed, the signals read from the domain's signal topics with the time each was seen, and the
audit records. An incident is

- *detected* by a signal about its entity (:meth:`Scenario.detects`) seen after it was
  injected;
- *acted on* by an *action* whose causation chain (:class:`chorus_agents.trace.AuditIndex`)
  starts at an agent receiving a signal about its entity: an action is a ``decision`` whose
  ``action`` is not a no-op (:data:`NO_ACTIONS`), or a successful ``tool.call`` of a tool
  that changes something (not ``get_``/``list_``/``search_``/... :data:`READ_PREFIXES`).

A *model decision* is a ``decision`` record naming an ``action`` in a handling (one message
or event of one agent: its records share a ``correlation_id``) where the agent called its
model: *acted* when the decision is an action, *declined* when it is a no-op. The report
counts both per agent (:func:`model_decisions`), so a run shows what the model turned down
beside what it did.

The back end's own records (:mod:`chorus_agents.dev.ledgers`, read at the end of the run)
give the *effects* of the run, each carrying out an action; an action with two effects is a
duplicate, and a run with one is not OK.

The audit trail is *complete* when every action's chain reaches a received signal. An action
is *unprompted* when no injected incident explains it: its chain starts at a signal about no
incident's entity, or it came before that incident was injected. A run is OK when every
incident was detected and acted on, no action was unprompted (in a quiet run: none at all),
and the trail is complete.
Latencies are wall-clock seconds (audit records carry the agent's wall time).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chorus_agents.dev.ledgers import Effect, duplicates
from chorus_agents.dev.scenarios import Incident, Scenario
from chorus_agents.trace import AuditIndex

NO_ACTIONS = frozenset({"none", "ignore", "ignored", "skip", "noop", "no-op", "no_action"})
READ_PREFIXES = ("get_", "list_", "search_", "find_", "read_", "lookup_", "describe_", "check_")


@dataclass(frozen=True)
class SeenSignal:
    """A signal envelope and the wall time (epoch seconds) it was read."""

    envelope: Mapping[str, Any]
    seen_at: float


@dataclass(frozen=True)
class Injected:
    """An incident and the wall time its first record was fed (None: the feed stopped first)."""

    incident: Incident
    at: float | None


@dataclass
class IncidentOutcome:
    incident_id: str
    entity: str
    injected: bool
    detected: bool = False
    acted: bool = False
    detect_seconds: float | None = None
    action_seconds: float | None = None
    first_signal: str | None = None
    first_action: str | None = None


@dataclass
class Report:
    domain: str
    quiet: bool
    records_fed: int
    feed_seconds: float
    signals: dict[str, int]
    incidents: list[IncidentOutcome]
    actions: int
    actions_without_signal: list[str]
    audit_by_agent_kind: dict[str, dict[str, int]]
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    unprompted_actions: list[str] = field(default_factory=list)
    """Actions (ids) whose chain starts at a signal no injected incident explains."""
    model_decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per agent that called a model: its decisions ``acted`` and ``declined``."""
    effects: int | None = None
    """Effects in the back end's own records (None: the domain has no ledger)."""
    duplicate_effects: dict[str, list[str]] = field(default_factory=dict)
    """Each action the back end carried out more than once, and those effects' ids."""

    @property
    def audit_complete(self) -> bool:
        return not self.actions_without_signal

    @property
    def ok(self) -> bool:
        """Every incident detected and acted on, no action unprompted (a quiet run: none at
        all), the trail complete, nothing done twice in the back end."""
        if self.duplicate_effects:
            return False
        if self.quiet:
            return self.actions == 0 and self.audit_complete
        return (
            all(i.detected and i.acted for i in self.incidents)
            and not self.unprompted_actions
            and self.audit_complete
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "audit_complete": self.audit_complete, "ok": self.ok}


def is_action(record: Mapping[str, Any]) -> bool:
    """Whether an audit record is an action (see the module docstring)."""
    fields: Mapping[str, Any] = record.get("fields") or {}
    if record.get("kind") == "decision":
        action = str(fields.get("action", "")).lower()
        return bool(action) and action not in NO_ACTIONS and not action.startswith("already")
    if record.get("kind") == "tool.call":
        name = str(fields.get("name", ""))
        return fields.get("outcome") == "ok" and not name.startswith(READ_PREFIXES)
    return False


def model_decisions(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """``{agent: {"acted": n, "declined": n}}`` over the model decisions in ``records``
    (see the module docstring), for the agents that made any."""
    consulted = {
        (r.get("agent"), r.get("correlation_id"))
        for r in records
        if r.get("kind") == "model.call" and (r.get("fields") or {}).get("outcome") == "ok"
    }
    counts: dict[str, Counter[str]] = {}
    for record in records:
        fields: Mapping[str, Any] = record.get("fields") or {}
        handling = (record.get("agent"), record.get("correlation_id"))
        if record.get("kind") != "decision" or "action" not in fields or handling not in consulted:
            continue
        verdict = "acted" if is_action(record) else "declined"
        counts.setdefault(str(record.get("agent")), Counter())[verdict] += 1
    return {
        agent: {"acted": c["acted"], "declined": c["declined"]}
        for agent, c in sorted(counts.items())
    }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max (nearest rank) of ``values``; empty when there are none."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)

    return {"p50": rank(0.5), "p99": rank(0.99), "max": round(ordered[-1], 3), "n": len(ordered)}


def epoch(text: Any) -> float | None:
    """An ISO 8601 time (``...Z`` allowed) as epoch seconds; None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def build_report(
    scenario: Scenario,
    *,
    quiet: bool,
    injected: Sequence[Injected],
    signals: Sequence[SeenSignal],
    audit: Sequence[Mapping[str, Any]],
    records_fed: int,
    feed_seconds: float,
    fed_at: Sequence[tuple[float, float]] = (),
    effects: Sequence[Effect] | None = None,
) -> Report:
    """The report of a run (see the module docstring).

    ``fed_at`` is ``(event-time epoch, wall time)`` of fed records in feed order; with it
    the report has the input-record -> signal latency of every signal (the wall time the
    first record at or after the signal's own event time was fed, to the time it was seen).
    ``effects`` are the back end's (:mod:`chorus_agents.dev.ledgers`), if it was read.
    """
    index = AuditIndex(audit)
    by_id = {str(s.envelope.get("id")): s for s in signals}
    actions = [r for r in index.records if is_action(r)]
    roots: dict[str, SeenSignal | None] = {}
    orphans: list[str] = []
    for action in actions:
        root = index.chain(action)[0][0]
        fields: Mapping[str, Any] = root.get("fields") or {}
        received = root.get("kind") == "event.received"
        signal = by_id.get(str(fields.get("event_id"))) if received else None
        roots[action["id"]] = signal
        if signal is None:
            orphans.append(action["id"])
    outcomes: list[IncidentOutcome] = []
    detect_latency: list[float] = []
    action_latency: list[float] = []
    for item in injected:
        incident = item.incident
        outcome = IncidentOutcome(incident.incident_id, incident.entity, item.at is not None)
        outcomes.append(outcome)
        if item.at is None:
            continue
        detecting = sorted(
            (s for s in signals if s.seen_at >= item.at and scenario.detects(s.envelope, incident)),
            key=lambda s: s.seen_at,
        )
        if detecting:
            first = detecting[0]
            outcome.detected = True
            outcome.first_signal = str(first.envelope.get("id"))
            outcome.detect_seconds = round(first.seen_at - item.at, 3)
            detect_latency.append(first.seen_at - item.at)
        acted = []
        for action in actions:
            signal = roots.get(action["id"])
            at = epoch(action.get("time"))
            if signal is None or at is None or at < item.at:
                continue
            if scenario.mentions(signal.envelope, incident.entity):
                acted.append((at, action))
        if acted:
            at, action = min(acted, key=lambda pair: pair[0])
            outcome.acted = True
            what = action.get("fields") or {}
            label = what.get("action") or what.get("name")
            outcome.first_action = f"{action.get('agent')} {action.get('kind')} {label}"
            outcome.action_seconds = round(at - item.at, 3)
            action_latency.append(at - item.at)
    unprompted = [
        action["id"]
        for action in actions
        if (signal := roots.get(action["id"])) is not None
        and not any(
            item.at is not None
            and (epoch(action.get("time")) or 0.0) >= item.at
            and scenario.mentions(signal.envelope, item.incident.entity)
            for item in injected
        )
    ]
    record_latency: list[float] = []
    if fed_at:
        times = [t for t, _ in fed_at]
        for s in signals:
            at = epoch(s.envelope.get("time"))
            if at is None:
                continue
            position = bisect.bisect_left(times, at)
            if position < len(fed_at):
                record_latency.append(max(0.0, s.seen_at - fed_at[position][1]))
    by_agent: dict[str, Counter[str]] = {}
    for record in index.records:
        by_agent.setdefault(str(record.get("agent")), Counter())[str(record.get("kind"))] += 1
    kinds = Counter(str(s.envelope.get("kind")) for s in signals)
    latency = {
        name: values
        for name, values in (
            ("incident_to_detection", percentiles(detect_latency)),
            ("incident_to_action", percentiles(action_latency)),
            ("record_to_signal", percentiles(record_latency)),
        )
        if values
    }
    return Report(
        domain=scenario.domain,
        quiet=quiet,
        records_fed=records_fed,
        feed_seconds=round(feed_seconds, 3),
        signals=dict(sorted(kinds.items())),
        incidents=outcomes,
        actions=len(actions),
        actions_without_signal=orphans,
        unprompted_actions=unprompted,
        audit_by_agent_kind={a: dict(sorted(c.items())) for a, c in sorted(by_agent.items())},
        latency=latency,
        model_decisions=model_decisions(index.records),
        effects=None if effects is None else len(effects),
        duplicate_effects=duplicates(effects or ()),
    )


def render(report: Report) -> Any:
    """The report as rich renderables (a group of tables)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    mode = "quiet run" if report.quiet else "incident run"
    head = Text.assemble(
        (f"chorus dev up {report.domain}: {mode}", "bold"),
        f"  fed {report.records_fed} records in {report.feed_seconds:.0f}s; signals ",
        ", ".join(f"{k} {v}" for k, v in report.signals.items()) or "none",
    )
    incidents = Table("incident", "detected", "acted on", "first action", title="incidents")
    for i in report.incidents:
        incidents.add_row(
            i.incident_id,
            f"yes, {i.detect_seconds:.1f}s" if i.detected else "[red]no[/]",
            f"yes, {i.action_seconds:.1f}s" if i.acted else "[red]no[/]",
            i.first_action or "-",
        )
    latency = Table("latency (s)", "p50", "p99", "max", "n", title="latency")
    for name, values in report.latency.items():
        latency.add_row(name, *(str(values[k]) for k in ("p50", "p99", "max", "n")))
    decisions = Table("agent", "acted", "declined", title="model decisions")
    for agent, counts in report.model_decisions.items():
        decisions.add_row(agent.rpartition("/")[2], str(counts["acted"]), str(counts["declined"]))
    agents = list(report.audit_by_agent_kind)
    kinds = sorted({k for c in report.audit_by_agent_kind.values() for k in c})
    audit = Table(
        "kind", *(a.rpartition("/")[2] for a in agents), title="audit trail: records by kind"
    )
    for kind in kinds:
        audit.add_row(kind, *(str(report.audit_by_agent_kind[a].get(kind, 0)) for a in agents))
    trail = (
        f"{report.actions} actions, every chain reaches a signal"
        if report.audit_complete
        else f"[red]{len(report.actions_without_signal)} of {report.actions} actions "
        "have no signal at the root of their chain[/]"
    )
    if report.unprompted_actions and not report.quiet:
        trail += (
            f"; [red]{len(report.unprompted_actions)} actions no incident explains "
            "(a signal about another entity, or before the incident)[/]"
        )
    if report.duplicate_effects:
        twice = "; ".join(f"{a}: {', '.join(ids)}" for a, ids in report.duplicate_effects.items())
        trail += f"; [red]done twice in the back end: {twice}[/]"
    elif report.effects is not None:
        trail += f"; the back end holds {report.effects} effects, none twice"
    verdict = "[green]OK[/]" if report.ok else "[red]NOT OK[/]"
    shown: list[Any] = [head, incidents, latency]
    if report.model_decisions:
        shown.append(decisions)
    return Group(*shown, audit, Text.from_markup(f"{trail}  {verdict}"))
