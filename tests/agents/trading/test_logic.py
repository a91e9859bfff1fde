"""The trading agents' decisions without a broker: severity, proposals, risk, the script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chorus_agents.models import ChatMessage, ModelRequest, ToolSpec
from chorus_agents.trading.analyst import proposal_for
from chorus_agents.trading.common import Signal, rejection_rule
from chorus_agents.trading.exchange import Limits
from chorus_agents.trading.risk import assess

from tests.agents.spec_models import spec_script

pytestmark = pytest.mark.unit


def envelope(kind: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{kind}:ACME:2026-01-05T14:30:04.000Z",
        "source": "chorus_flink.jobs.trading",
        "type": f"dev.chorus.trading.{kind}",
        "kind": kind,
        "subject": "ACME",
        "time": "2026-01-05T14:30:04.000Z",
        "data": data,
    }


def test_severity_and_flash_crashes() -> None:
    crash = Signal.parse(envelope("price_spike", deviation=-0.12))
    mild = Signal.parse(envelope("price_spike", deviation=-0.03))
    melt_up = Signal.parse(envelope("price_spike", deviation=0.08))
    volume = Signal.parse(envelope("volume_anomaly", ratio=7.0))
    assert crash is not None and crash.severe and crash.flash_crash
    assert mild is not None and not mild.severe and not mild.flash_crash
    assert melt_up is not None and melt_up.severe and not melt_up.flash_crash
    assert volume is not None and volume.severe and volume.severity == 7.0
    # compliance's pre-filter passes crashes and near misses downwards, nothing else
    suspect = Signal.parse(envelope("price_spike", deviation=-0.045))
    assert suspect is not None and suspect.crash_suspect and not suspect.flash_crash
    assert crash.crash_suspect and not mild.crash_suspect and not melt_up.crash_suspect
    assert not volume.crash_suspect
    assert Signal.parse({"kind": "vwap"}) is None
    assert Signal.parse(b"not json") is None


def test_the_analyst_proposes_to_reduce_a_position_only() -> None:
    crash = Signal.parse(envelope("price_spike", deviation=-0.12))
    mild = Signal.parse(envelope("volume_anomaly", ratio=3.5))
    assert crash is not None and mild is not None
    assert proposal_for(crash, 0) is None
    long = proposal_for(crash, 1000)
    assert long is not None and (long["side"], long["quantity"]) == ("sell", 500)
    short = proposal_for(mild, -300)
    assert short is not None and (short["side"], short["quantity"]) == ("buy", 75)
    assert long["incident"] == crash.id and long["proposal_id"] == f"{crash.id}/reduce"


def test_risk_approves_reductions_within_the_limits_and_rejects_the_rest() -> None:
    limits = Limits()
    proposal = {"symbol": "ACME", "side": "sell", "quantity": 2000, "kind": "price_spike"}
    severe = assess({**proposal, "severity": 0.12}, position=3000, last=120.0, limits=limits)
    assert (severe["decision"], severe["size"]) == ("approve", 1000)  # max_order_quantity
    notional = assess({**proposal, "severity": 0.12}, position=3000, last=400.0, limits=limits)
    assert notional["size"] == 625  # 250,000 / 400
    mild = assess({**proposal, "severity": 0.03}, position=3000, last=120.0, limits=limits)
    assert (mild["decision"], mild["size"], mild["score"]) == ("approve", 500, 0.3)
    adding = assess({**proposal, "severity": 0.12}, position=-10, last=120.0, limits=limits)
    assert (adding["decision"], adding["size"]) == ("reject", 0)
    assert "does not reduce the position -10" in adding["reason"]


def test_the_rule_of_a_refused_order_is_read_from_the_error() -> None:
    text = "Error executing tool place_order: order rejected (compliance): ACME is restricted"
    assert rejection_rule(text) == "compliance"
    assert rejection_rule("something else") == "unknown"


@pytest.mark.anyio
async def test_the_compliance_script_restricts_on_a_flash_crash_only() -> None:
    model = spec_script("trading", "compliance")
    tools = (ToolSpec(name="restrict_symbol", description="", input_schema={}),)

    async def ask(value: dict[str, Any]) -> Any:
        text = "Event on trading.signals (key ACME):\n" + json.dumps(value)
        return await model.complete(
            ModelRequest(messages=(ChatMessage(role="user", text=text),), tools=tools)
        )

    crash = envelope("price_spike", price=105.6, vwap=120.0, deviation=-0.12)
    (call,) = (await ask(crash)).tool_calls
    assert call.name == "restrict_symbol"
    assert call.arguments["symbol"] == "ACME"
    assert crash["id"] in call.arguments["reason"] and "-0.12" in call.arguments["reason"]
    for calm in (
        envelope("price_spike", deviation=-0.045),  # a suspect the pre-filter passes
        envelope("price_spike", deviation=-0.03),
        envelope("price_spike", deviation=0.08),
        envelope("volume_anomaly", ratio=9.0),
        envelope("vwap", vwap=120.0),
    ):
        answer = await ask(calm)
        assert answer.tool_calls == ()
        assert answer.text.startswith("No compliance action")
