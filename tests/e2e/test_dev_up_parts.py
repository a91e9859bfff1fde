"""The pure parts of ``chorus dev up``: the topic list, the scenarios, the report, the live view."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from chorus_agents.dev.live import FeedProgress, Observer, view
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.report import (
    Injected,
    SeenSignal,
    build_report,
    is_action,
    model_decisions,
    percentiles,
    render,
)
from chorus_agents.dev.scenarios import SCENARIOS, Incident, scenario
from chorus_agents.dev.topics import domain_topics
from chorus_api.streams import resolve_stream
from chorus_api.topics import own_topics, tasks_topic
from rich.console import Console

from tests.services.base import REPO

TRADING = REPO / "agents" / "trading" / "deploy"
READY = [d for d in SCENARIOS if (REPO / "agents" / d / "deploy").is_dir()]


@pytest.mark.unit
def test_the_trading_topics_are_those_the_manifests_imply() -> None:
    listed = domain_topics(load_domain(TRADING), extra_inputs=("trading.trades",))
    topics = {t.name: t for t in listed}
    for agent in ("market-analyst", "risk-assessor", "execution", "compliance"):
        for role, name in own_topics("trading", agent).items():
            assert name in topics, role
        assert topics[tasks_topic("trading", agent)].config == {"cleanup.policy": "compact"}
    assert topics["chorus.agent-cards"].config == {"cleanup.policy": "compact"}
    assert "chorus.trading.audit" in topics
    assert topics["trading.orders"].partitions == 3  # the manifest's default
    assert "retention.ms" in topics["trading.orders"].config
    assert {"trading.signals", "trading.trades.dlq"} <= set(topics)
    # The stream's input has one partition, so the job's watermark never waits on an empty one.
    assert topics["trading.trades"].partitions == 1


@pytest.mark.unit
@pytest.mark.parametrize("domain", READY)
def test_each_scenario_feeds_a_topic_its_streams_read(domain: str) -> None:
    loaded = load_domain(REPO / "agents" / domain / "deploy")
    inputs = {t for a in loaded.agents for s in a.spec.streams for t in resolve_stream(s).inputs}
    assert scenario(domain).topic in inputs


@pytest.mark.unit
def test_a_quiet_plan_injects_nothing_and_an_incident_plan_its_incident() -> None:
    trading = scenario("trading")
    quiet = trading.plan(quiet=True, seconds=20)
    assert quiet.incidents == () and quiet.setup == ()
    loud = trading.plan(seconds=20)
    assert [(i.entity, i.at_seconds) for i in loud.incidents] == [("ACME", 10)]
    assert loud.setup[0].name == "place_order"
    records = list(loud.records())
    assert records and all(a.offset <= b.offset for a, b in itertools.pairwise(records))
    assert {r.key for r in records} >= {"ACME"}
    with pytest.raises(KeyError, match="there are: trading"):
        scenario("nowhere")
    # maintenance sets its scene on the scenario's day: a run to move and a firm one
    plant = scenario("maintenance").plan(seconds=600)
    slots = [(c.name, c.arguments["slot_id"], c.arguments["firm"]) for c in plant.setup]
    assert slots == [
        ("plan_production_slot", "press-01-run-b", True),
        ("plan_production_slot", "press-01-run-a", False),
    ]
    # both inside the window from 10:00, however short the repair (an hour at least)
    assert [c.arguments["start"] for c in plant.setup] == [
        "2026-01-05T10:00+00:00",
        "2026-01-05T10:30+00:00",
    ]
    assert scenario("maintenance").plan(quiet=True).setup == ()
    # support: two unhappy customers
    assert [i.entity for i in scenario("support").plan().incidents] == ["cust-001", "cust-003"]


@pytest.mark.unit
def test_a_signal_mentions_an_entity_by_subject_or_in_its_data() -> None:
    trading, support = scenario("trading"), scenario("support")
    crash = Incident("flash-crash:ACME@90", "ACME", 90)
    assert trading.detects({"kind": "price_spike", "subject": "ACME"}, crash)
    assert not trading.detects({"kind": "vwap", "subject": "ACME"}, crash)  # routine
    assert not trading.detects({"kind": "price_spike", "subject": "UMBR"}, crash)
    angry = Incident("angry-customer:c1@300", "cust-1", 300)
    wait = {"kind": "long_wait", "subject": "conv-3", "data": {"customer_id": "cust-1"}}
    assert support.detects(wait, angry)


def audit(id_: str, kind: str, cause: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "kind": kind,
        "agent": "trading/compliance",
        "causation_id": cause,
        "correlation_id": "c",
        "time": "2026-01-05T09:00:10Z",
        "fields": fields,
    }


@pytest.mark.unit
def test_the_report_follows_each_action_back_to_its_signal() -> None:
    injected_at = 1767603600.0  # 2026-01-05T09:00:00Z
    spike = {"id": "price_spike:ACME:t", "kind": "price_spike", "subject": "ACME"}
    records = [
        audit("r1", "event.received", event_id="price_spike:ACME:t"),
        audit("r2", "tool.call", "r1", tool="exchange", name="restrict_symbol", outcome="ok"),
        audit("r3", "tool.call", "r2", tool="exchange", name="get_quote", outcome="ok"),
        audit("r4", "decision", "r3", action="restrict"),
        audit("x1", "decision", "gone", action="restrict"),  # its cause is not in the log
    ]
    report = build_report(
        scenario("trading"),
        quiet=False,
        injected=[Injected(Incident("flash-crash:ACME@90", "ACME", 90), injected_at)],
        signals=[SeenSignal(spike, injected_at + 2)],
        audit=records,
        records_fed=10,
        feed_seconds=5,
    )
    outcome = report.incidents[0]
    assert (outcome.detected, outcome.detect_seconds) == (True, 2.0)
    assert (outcome.acted, outcome.action_seconds) == (True, 10.0)
    assert report.actions == 3  # restrict_symbol, and both decisions; get_quote only reads
    assert report.actions_without_signal == ["x1"]
    assert not report.audit_complete and not report.ok
    assert report.audit_by_agent_kind["trading/compliance"]["decision"] == 2


def timed(record: dict[str, Any], at: str) -> dict[str, Any]:
    return {**record, "time": at}


@pytest.mark.unit
def test_an_action_no_incident_explains_makes_the_run_not_ok() -> None:
    """What a quiet run checks, inside an incident run: no action about another entity, and
    none about the incident's entity before it was injected."""
    injected_at = 1767603600.0  # 2026-01-05T09:00:00Z
    acme = {"id": "price_spike:ACME:t", "kind": "price_spike", "subject": "ACME"}
    umbr = {"id": "price_spike:UMBR:t", "kind": "price_spike", "subject": "UMBR"}
    early = {"id": "price_spike:ACME:e", "kind": "price_spike", "subject": "ACME"}
    records = [
        audit("a1", "event.received", event_id=acme["id"]),
        audit("a2", "decision", "a1", action="restrict"),  # 09:00:10, after the injection
        audit("u1", "event.received", event_id=umbr["id"]),
        audit("u2", "decision", "u1", action="restrict"),  # about another symbol
        timed(audit("e1", "event.received", event_id=early["id"]), "2026-01-05T08:59:50Z"),
        timed(audit("e2", "decision", "e1", action="restrict"), "2026-01-05T08:59:51Z"),
    ]
    crash = Injected(Incident("flash-crash:ACME@90", "ACME", 90), injected_at)
    seen = [SeenSignal(s, injected_at + 2) for s in (acme, umbr, early)]
    kwargs: dict[str, Any] = {"records_fed": 10, "feed_seconds": 5, "signals": seen}
    report = build_report(
        scenario("trading"), quiet=False, injected=[crash], audit=records, **kwargs
    )
    assert report.incidents[0].acted and report.audit_complete
    assert report.unprompted_actions == ["u2", "e2"]
    assert not report.ok
    explained = [r for r in records if r["id"] in {"a1", "a2"}]
    report = build_report(
        scenario("trading"), quiet=False, injected=[crash], audit=explained, **kwargs
    )
    assert report.unprompted_actions == [] and report.ok
    # Without an incident (a quiet run), every action is unprompted.
    report = build_report(scenario("trading"), quiet=True, injected=[], audit=explained, **kwargs)
    assert report.unprompted_actions == ["a2"] and not report.ok


@pytest.mark.unit
def test_no_op_decisions_are_not_actions_and_percentiles_are_nearest_rank() -> None:
    assert not is_action(audit("a", "decision", action="none"))
    assert not is_action(audit("a", "decision", action="already_escalated"))
    assert not is_action(audit("a", "tool.call", name="place_order", outcome="error"))
    assert is_action(audit("a", "decision", action="escalate"))
    assert percentiles([3.0, 1.0, 2.0, 4.0]) == {"p50": 2.0, "p99": 4.0, "max": 4.0, "n": 4}
    assert percentiles([]) == {}


@pytest.mark.unit
def test_model_decisions_count_what_the_model_acted_on_and_what_it_declined() -> None:
    def handled(n: str, *records: dict[str, Any]) -> list[dict[str, Any]]:
        return [{**r, "correlation_id": f"h{n}"} for r in records]

    def asked(n: str) -> dict[str, Any]:
        return audit(f"{n}a", "model.call", outcome="ok")

    records = [
        # the model asked, a restriction followed: acted
        *handled("1", asked("1"), audit("1b", "decision", outcome="answer"),  # the loop's own
                 audit("1c", "decision", action="restrict")),
        # the model asked, nothing followed: declined (twice)
        *handled("2", asked("2"), audit("2b", "decision", action="none")),
        *handled("3", asked("3"), audit("3b", "decision", action="none")),
        # no model call (the pre-filter decided), or the model failed: not the model's decision
        *handled("4", audit("4a", "decision", action="none")),
        *handled("5", audit("5a", "model.call", outcome="error"),
                 audit("5b", "decision", action="none")),
    ]  # fmt: skip
    counted = {"trading/compliance": {"acted": 1, "declined": 2}}
    other = {**records[0], "agent": "trading/analyst"}  # a model call in another agent's name
    assert model_decisions([*records, other]) == counted
    report = build_report(
        scenario("trading"), quiet=True, injected=[], signals=[], audit=records,
        records_fed=1, feed_seconds=1,
    )  # fmt: skip
    assert report.to_json()["model_decisions"] == counted
    shown = Console(record=True, width=120)
    shown.print(render(report))
    lines = shown.export_text().splitlines()
    assert any("model decisions" in line for line in lines)
    assert any(re.fullmatch(r"│ compliance │ 1 +│ 2 +│", line) for line in lines), lines


@pytest.mark.unit
def test_an_action_the_back_end_carried_out_twice_makes_the_run_not_ok() -> None:
    def run(effects: list[tuple[str, str]] | None) -> Any:
        return build_report(
            scenario("trading"), quiet=True, injected=[], signals=[], audit=[],
            records_fed=1, feed_seconds=1, effects=effects,
        )  # fmt: skip

    assert run(None).ok and run(None).effects is None  # a domain without a ledger
    once = run([("order for sig-1", "o1"), ("order for sig-2", "o2")])
    assert once.ok and (once.effects, once.duplicate_effects) == (2, {})
    twice = run([("order for sig-1", "o1"), ("order for sig-1", "o3")])
    assert not twice.ok and twice.duplicate_effects == {"order for sig-1": ["o1", "o3"]}
    shown = Console(record=True, width=200)
    shown.print(render(twice))
    assert "done twice in the back end: order for sig-1: o1, o3" in shown.export_text()
    shown.print(render(once))
    assert "the back end holds 2 effects, none twice" in shown.export_text()


@pytest.mark.unit
def test_the_live_view_shows_an_incident_acted_on_as_the_report_judges_it() -> None:
    injected_at = 1767603600.0  # 2026-01-05T09:00:00Z
    spike = {"id": "price_spike:ACME:t", "kind": "price_spike", "subject": "ACME"}
    observer = Observer({}, [], signal_topics=["trading.signals"], audit_topic="audit")
    feed = FeedProgress(total=10, fed=10)
    feed.injected.append(Injected(Incident("flash-crash:ACME@90", "ACME", 90), injected_at))

    def incident_row() -> str:
        console = Console(width=200, record=True)
        console.print(view(scenario("trading"), observer, feed, elapsed=5.0))
        return next(line for line in console.export_text().splitlines() if "flash-crash" in line)

    assert incident_row().split()[1:] == ["yes", "-", "-"]  # injected, nothing seen yet
    observer.signals.append(SeenSignal(spike, injected_at + 2))
    assert incident_row().split()[1:] == ["yes", "yes", "-"]  # detected, not acted on
    observer.audit += [
        audit("r1", "event.received", event_id="price_spike:ACME:t"),
        audit("r2", "tool.call", "r1", tool="exchange", name="restrict_symbol", outcome="ok"),
    ]
    row = incident_row()
    assert row.split()[1:4] == ["yes", "yes", "yes"], row
    assert "trading/compliance tool.call restrict_symbol" in row
