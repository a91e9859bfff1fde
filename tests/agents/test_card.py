"""The AgentCard: both interfaces, Kafka first, and its registry record."""

from __future__ import annotations

import pytest
from a2a.types.a2a_pb2 import AgentCard
from chorus_agents.binding.client import inbox_of, interface_url
from chorus_agents.binding.codec import BINDING_URI
from chorus_agents.card import build_agent_card, card_record
from chorus_agents.proto import from_json
from chorus_api.agent import Skill

pytestmark = pytest.mark.unit


def test_the_card_offers_kafka_first_then_http() -> None:
    card = build_agent_card(
        namespace="trading",
        name="risk-assessor",
        inbox="chorus.trading.risk-assessor.inbox",
        http_url="http://risk-assessor.trading:8080/",
        skills=[Skill(id="assess-risk", name="Assess risk", tags=("risk",))],
    )
    assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
        (BINDING_URI, "kafka:chorus.trading.risk-assessor.inbox", "1.0"),
        ("JSONRPC", "http://risk-assessor.trading:8080/", "1.0"),
    ]
    assert card.capabilities.streaming and not card.capabilities.push_notifications
    assert [(s.id, s.name, list(s.tags)) for s in card.skills] == [
        ("assess-risk", "Assess risk", ["risk"])
    ]
    assert card.description == "Chorus agent trading/risk-assessor"


def test_an_agent_without_http_offers_kafka_only() -> None:
    card = build_agent_card(namespace="ns", name="a", inbox="chorus.ns.a.inbox", http_url=None)
    assert [i.protocol_binding for i in card.supported_interfaces] == [BINDING_URI]


def test_the_registry_record_is_keyed_namespace_slash_agent() -> None:
    card = build_agent_card(namespace="ns", name="a", inbox="chorus.ns.a.inbox", http_url=None)
    record = card_record(card, topic="chorus.agent-cards", namespace="ns", agent="a")
    assert (record.topic, record.key) == ("chorus.agent-cards", b"ns/a")
    assert record.value is not None
    assert from_json(record.value, AgentCard()) == card


def test_interface_urls_name_the_inbox() -> None:
    assert interface_url("chorus.ns.a.inbox") == "kafka:chorus.ns.a.inbox"
    assert inbox_of("kafka:chorus.ns.a.inbox") == "chorus.ns.a.inbox"
    assert inbox_of("kafka://chorus.ns.a.inbox") == "chorus.ns.a.inbox"
    for bad in ("http://x/", "kafka:", "kafka:no spaces"):
        with pytest.raises(ValueError, match="not a Kafka interface URL"):
            inbox_of(bad)
