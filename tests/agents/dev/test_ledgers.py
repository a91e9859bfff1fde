"""The ledgers read each domain's back end through its real MCP server and find what was done
twice there: per domain, the effects an incident's agents make count once each, and the same
action carried out a second time (under another idempotency key, as a retry without its key
would) is named as a duplicate: the control that shows the check can fail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from chorus_agents.dev.ledgers import LEDGERS, duplicates
from chorus_agents.dev.scenarios import Incident
from chorus_agents.icu import clinical_server
from chorus_agents.icu.ward import ward_devices, ward_ehr
from chorus_agents.maintenance import cmms_server
from chorus_agents.maintenance.cmms import FLEET, MaintenanceSystem
from chorus_agents.support import helpdesk_server
from chorus_agents.support.crm import CUSTOMERS, Crm
from chorus_agents.support.knowledge import ARTICLES, KnowledgeBase
from chorus_agents.support.orders import OrderSystem, sample_orders
from chorus_agents.trading import exchange_server
from chorus_agents.trading.exchange import Exchange
from chorus_agents.traffic import signals_server
from chorus_agents.traffic.signals import SignalControllers
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer

from tests.agents.tools.mcp_server import serve_http

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


async def effects_of(domain: str, client: Client, entity: str) -> list[tuple[str, str]]:
    """The ledger's effects, read through the server's MCP client as ``chorus dev up`` does."""
    ledger = LEDGERS[domain]
    answers = []
    for call in ledger.reads([Incident("incident", entity, 0.0)]):
        result = await client.call_tool(call.name, dict(call.arguments))
        assert not result.is_error, result.content
        answers.append(result.structured_content)
    return ledger.effects(answers)


def trading() -> tuple[MCPServer[Any], str, Callable[[], None], Callable[[], None]]:
    exchange = Exchange(exchange_server.DEFAULT_PRICES)
    exchange.place_order("ACME", "buy", 1000)  # the scene: no key, not an agent's

    def act() -> None:
        exchange.place_order("ACME", "sell", 500, idempotency_key="order:sig-1/reduce")
        exchange.place_order("ACME", "sell", 500, idempotency_key="order:sig-1/reduce")

    def again() -> None:
        exchange.place_order("ACME", "sell", 500, idempotency_key="order:sig-1/reduce#2")

    return exchange_server.build_server(exchange), "ACME", act, again


def maintenance() -> tuple[MCPServer[Any], str, Callable[[], None], Callable[[], None]]:
    cmms = MaintenanceSystem(FLEET, cmms_server.DEFAULT_STOCK)

    def act() -> None:
        for _ in range(2):  # the same key twice: the first answer, nothing new
            cmms.open_work_order("press-01", "bearing_wear", "critical", idempotency_key="wo:a")

    def again() -> None:
        (first,) = cmms.work_orders()
        cmms.assign(first.work_order_id, "tech-ana")
        cmms.complete(first.work_order_id)
        cmms.open_work_order("press-01", "bearing_wear", "critical", idempotency_key="wo:b")

    return cmms_server.build_server(cmms), "press-01", act, again


def support() -> tuple[MCPServer[Any], str, Callable[[], None], Callable[[], None]]:
    crm = Crm(CUSTOMERS)
    orders = OrderSystem(sample_orders(datetime.now(UTC)))

    def escalate(key: str) -> None:
        case = crm.open_case("cust-002", "angry", idempotency_key=f"case:{key}")
        crm.escalate(case.case_id, "billing", f"incident {key}", idempotency_key=f"esc:{key}")

    server = helpdesk_server.build_server(crm, KnowledgeBase(ARTICLES), orders)
    return server, "cust-002", lambda: escalate("t1"), lambda: escalate("t2")


def traffic() -> tuple[MCPServer[Any], str, Callable[[], None], Callable[[], None]]:
    signals = SignalControllers()

    def act() -> None:
        signals.preempt("ems-west/inc-1", ("A1", "A2"), idempotency_key="preempt:inc-1")

    def again() -> None:
        signals.preempt("ems-east/inc-1", ("B2", "B3"), idempotency_key="preempt:inc-1#2")

    return signals_server.build_server(signals), "A1-A2", act, again


def icu() -> tuple[MCPServer[Any], str, Callable[[], None], Callable[[], None]]:
    ehr = ward_ehr()

    def act() -> None:
        ehr.prescribe("pt-001", "meropenem", 1.0, frequency="q8h", idempotency_key="rx:a")

    def again() -> None:
        (first,) = [o for o in ehr.orders("pt-001") if o.drug == "meropenem"]
        ehr.discontinue(first.order_id, "switched")
        ehr.prescribe("pt-001", "meropenem", 1.0, frequency="q8h", idempotency_key="rx:b")

    return clinical_server.build_server(ehr, ward_devices()), "pt-001", act, again


@pytest.mark.parametrize(
    "domain, make",
    [
        ("trading", trading),
        ("maintenance", maintenance),
        ("support", support),
        ("traffic", traffic),
        ("icu", icu),
    ],
)
async def test_an_action_counts_once_and_the_same_action_again_is_a_duplicate(
    domain: str, make: Callable[[], tuple[MCPServer[Any], str, Any, Any]]
) -> None:
    server, entity, act, again = make()
    async with serve_http(server) as url, Client(url) as client:
        before = await effects_of(domain, client, entity)
        act()
        once = await effects_of(domain, client, entity)
        assert len(once) == len(before) + 1 and duplicates(once) == {}, once
        again()
        twice = await effects_of(domain, client, entity)
    (action, ids), *rest = duplicates(twice).items()
    assert rest == [] and len(ids) == 2, twice
    assert {action} == {a for a, _ in once} - {a for a, _ in before}


def test_duplicates_name_each_action_with_more_than_one_effect() -> None:
    effects = [("order a", "1"), ("order b", "2"), ("order a", "3"), ("order c", "4")]
    assert duplicates(effects) == {"order a": ["1", "3"]}
    assert duplicates([]) == {}
