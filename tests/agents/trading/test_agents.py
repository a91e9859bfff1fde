"""The trading agents on real Kafka with the real exchange MCP server, from their manifests.

Signals are written to ``trading.signals`` as ``chorus_flink.jobs.trading`` writes them
(envelopes keyed by symbol); each test prefixes the domain topics with its namespace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from chorus_agents.handler import Handler
from chorus_agents.trading.analyst import MarketAnalyst
from chorus_agents.trading.compliance import ComplianceAgent
from chorus_agents.trading.exchange import Exchange
from chorus_agents.trading.exchange_server import DEFAULT_PRICES, build_server
from chorus_agents.trading.execution import ExecutionAgent
from chorus_agents.trading.risk import RiskAgent

from tests.agents.conftest import StartAgent, namespace
from tests.agents.domain_harness import DECLINES_ALL, DomainRun, chain
from tests.agents.trading.deploy import MANIFESTS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DOMAIN_TOPICS = (
    "trading.signals",
    "trading.analysis",
    "trading.risk-scores",
    "trading.orders",
    "trading.compliance",
)
LOGIC: dict[str, Callable[[str], Handler]] = {
    "risk-assessor": lambda prefix: RiskAgent(topic_prefix=prefix),
    "execution": lambda prefix: ExecutionAgent(topic_prefix=prefix),
    "compliance": lambda prefix: ComplianceAgent(topic_prefix=prefix),
    "market-analyst": lambda prefix: MarketAnalyst(topic_prefix=prefix),
}


def signal(kind: str, symbol: str, time: str, ns: str, **data: Any) -> dict[str, Any]:
    """An envelope as the Flink job writes it (the id made unique to the test)."""
    return {
        "specversion": "1.0",
        "id": f"{kind}:{symbol}:{time}:{ns}",
        "source": "chorus_flink.jobs.trading",
        "type": f"dev.chorus.trading.{kind}",
        "kind": kind,
        "subject": symbol,
        "time": time,
        "data": data,
    }


class Desk(DomainRun):
    """The exchange (holding 1000 ACME), its server, the four agents, the test's topics."""

    manifests = MANIFESTS
    signals_topic = "trading.signals"
    timeout = 90

    def __init__(self, kafka: Any, ns: str, exchange: Exchange) -> None:
        super().__init__(kafka, ns)
        self.exchange = exchange


@pytest.fixture
async def desk(kafka: Any, start_agent: StartAgent, request: Any) -> AsyncIterator[Desk]:
    """The desk; parametrized indirectly, with ``{agent: script}`` for other models."""
    exchange = Exchange(DEFAULT_PRICES)
    exchange.place_order("ACME", "buy", 1000)  # the desk's position before the incident
    found = Desk(kafka, namespace(), exchange)
    servers = {"exchange": build_server(exchange)}
    scripts = getattr(request, "param", None)
    async with found.running(
        start_agent, topics=DOMAIN_TOPICS, servers=servers, logic=LOGIC, scripts=scripts
    ):
        yield found


async def test_a_flash_crash_is_vetoed_by_compliance_and_orders_are_rejected(desk: Desk) -> None:
    ns = desk.ns
    crash = signal(
        "price_spike", "ACME", "2026-01-05T14:30:04.000Z", ns,
        price=105.6, quantity=400.0, vwap=120.0, deviation=-0.12,
    )  # fmt: skip
    desk.send(crash)

    (veto,) = await desk.until(lambda: desk.published("trading.compliance"))
    assert veto["incident"] == crash["id"]
    assert (veto["symbol"], veto["action"], veto["restricted"]) == ("ACME", "restrict", True)
    restriction = desk.exchange.restriction("ACME")
    assert restriction is not None and crash["id"] in restriction

    (first,) = await desk.until(lambda: desk.published("trading.analysis"))
    assert (first["incident"], first["action"], first["position"]) == (crash["id"], "reduce", 1000)
    assert first["proposal"]["side"] == "sell"
    assert first["risk"]["decision"] == "approve"
    # whether this order beat the veto is a race between two agents: either outcome is real
    assert first["order"]["status"] in {"filled", "rejected"}

    # the crash's heavy volume: a later signal, after the veto, so its order is refused
    anomaly = signal(
        "volume_anomaly", "ACME", "2026-01-05T14:30:10.000Z", ns,
        volume=9000.0, baseline_volume=1000.0, ratio=9.0,
    )  # fmt: skip
    desk.send(anomaly)
    analyses = await desk.until(
        lambda: [a for a in desk.published("trading.analysis") if a["incident"] == anomaly["id"]]
    )
    order = analyses[0]["order"]
    assert (order["status"], order["rule"]) == ("rejected", "compliance")
    assert "restricted by compliance" in order["reason"]

    orders = desk.published("trading.orders")
    assert [o["incident"] for o in orders] == [crash["id"], anomaly["id"]]
    scores = desk.published("trading.risk-scores")
    assert [(s["incident"], s["decision"]) for s in scores] == [
        (crash["id"], "approve"),
        (anomaly["id"], "approve"),
    ]
    # the compliance agent acted once: only the flash crash reached its model
    assert len(desk.published("trading.compliance")) == 1

    audit = await desk.until(
        lambda: (
            (records := desk.audit())
            and any(
                r["kind"] == "decision"
                and r["fields"].get("incident") == anomaly["id"]
                and r["agent"] == f"{ns}/market-analyst"
                for r in records
            )
            and records
        )
    )
    decisions = {
        r["agent"].split("/")[1]: r
        for r in audit
        if r["kind"] == "decision" and r["fields"].get("incident") == anomaly["id"]
    }
    assert set(decisions) == {"market-analyst", "risk-assessor", "execution"}
    assert decisions["execution"]["fields"]["status"] == "rejected"
    assert decisions["execution"]["fields"]["rule"] == "compliance"
    # from the order outcome back to the signal: execution <- analyst's call <- the event
    steps = chain(audit, decisions["execution"])
    kinds = [(r["agent"].split("/")[1], r["kind"]) for r in steps]
    assert ("execution", "tool.call") in kinds
    assert ("execution", "message.received") in kinds
    assert ("market-analyst", "agent.call") in kinds
    received = steps[-1]
    assert (received["agent"], received["kind"]) == (f"{ns}/market-analyst", "event.received")
    assert received["fields"]["topic"] == desk.topic("trading.signals")
    assert received["fields"]["offset"] == 1  # the anomaly, the second signal
    # the risk assessment hangs off the same event
    risk_steps = chain(audit, decisions["risk-assessor"])
    assert risk_steps[-1]["id"] == received["id"]
    assert decisions["market-analyst"]["correlation_id"] == received["correlation_id"]
    # and compliance's veto is audited with the crash's incident
    assert any(
        r["kind"] == "decision"
        and r["agent"] == f"{ns}/compliance"
        and r["fields"].get("incident") == crash["id"]
        and r["fields"].get("action") == "restrict"
        for r in audit
    )


async def test_a_quiet_market_leads_to_no_action(desk: Desk) -> None:
    ns = desk.ns
    prices = [("ACME", 120.1), ("GLOBX", 48.4), ("ACME", 120.0)]
    quiet = [
        signal(
            "vwap", symbol, f"2026-01-05T14:31:{second:02d}.000Z", ns,
            vwap=price, volatility=0.05, volume=1200.0, trade_count=40,
        )
        for second, (symbol, price) in enumerate(prices)
    ]  # fmt: skip
    desk.send(*quiet)

    def handled() -> list[dict[str, Any]]:
        records = desk.audit()
        done = [r for r in records if r["kind"] == "event.handled"]
        agents = {r["agent"] for r in done}
        complete = len(done) >= 6 and agents == {f"{ns}/market-analyst", f"{ns}/compliance"}
        return records if complete else []

    audit = await desk.until(handled)
    for name in ("trading.analysis", "trading.risk-scores", "trading.orders", "trading.compliance"):
        assert desk.published(name) == [], name
    assert desk.exchange.restriction("ACME") is None
    assert len(desk.exchange.orders()) == 1  # the position set up before the run
    acting = {"agent.call", "tool.call", "tool.refused", "model.call", "decision"}
    assert [r for r in audit if r["kind"] in acting] == []


@pytest.mark.parametrize("desk", [{"compliance": DECLINES_ALL}], indirect=True)
async def test_a_model_that_declines_restricts_nothing(desk: Desk) -> None:
    """The same crash, another model (the spec's script replaced): it is asked, it
    declines, and no restriction follows; the manifest's model restricts (above)."""
    crash = signal(
        "price_spike", "ACME", "2026-01-05T14:30:04.000Z", desk.ns,
        price=105.6, quantity=400.0, vwap=120.0, deviation=-0.12,
    )  # fmt: skip
    desk.send(crash)

    (veto,) = await desk.until(lambda: desk.published("trading.compliance"))
    assert (veto["incident"], veto["action"], veto["restricted"]) == (crash["id"], "none", False)
    assert veto["answer"] == "none: I decline to act on this."
    assert desk.exchange.restriction("ACME") is None
    audit = await desk.until(
        lambda: (
            (found := [r for r in desk.audit() if r["agent"] == f"{desk.ns}/compliance"])
            and any("action" in r["fields"] for r in found if r["kind"] == "decision")
            and found
        )
    )
    kinds = [r["kind"] for r in audit]
    assert "model.call" in kinds and "tool.call" not in kinds
    (decided,) = [r for r in audit if r["kind"] == "decision" and "action" in r["fields"]]
    assert decided["fields"]["action"] == "none"
