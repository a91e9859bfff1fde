"""The runtime configuration (chorus_api.runtime) and the topic names (chorus_api.topics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chorus_api import topics
from chorus_api.runtime import (
    RuntimeConfig,
    RuntimeConfigError,
    load_runtime_config,
    parse_runtime_config,
    runtime_config_document,
    runtime_config_yaml,
)

pytestmark = pytest.mark.unit


def minimal(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "agent": {"namespace": "trading", "name": "risk-assessor"},
        "kafka": {"bootstrapServers": "chorus-kafka-bootstrap.kafka:9093"},
        "handler": "chorus_agents.trading.risk:RiskAgent",
    }
    document.update(overrides)
    return document


def errors_of(document: dict[str, Any]) -> str:
    with pytest.raises(RuntimeConfigError) as caught:
        parse_runtime_config(document)
    return str(caught.value)


def test_topics_are_derived_from_the_identity_when_omitted() -> None:
    config = parse_runtime_config(minimal())
    assert config.topics.inbox == "chorus.trading.a2a.risk-assessor.inbox"
    assert config.topics.replies == "chorus.trading.a2a.risk-assessor.replies"
    assert config.topics.dead_letter == "chorus.trading.risk-assessor.dlq"
    assert config.topics.tasks == "chorus.trading.risk-assessor.tasks"
    assert config.topics.audit == "chorus.trading.audit"
    assert config.topics.agent_cards == "chorus.agent-cards"
    assert config.agent.key == "trading/risk-assessor"
    assert config.delivery.guarantee == "exactly-once"


def test_explicit_topics_win_over_derived_ones() -> None:
    config = parse_runtime_config(
        minimal(topics={"inbox": "custom.inbox", "subscribe": ["trading.signals"]})
    )
    assert config.topics.inbox == "custom.inbox"
    assert config.topics.replies == "chorus.trading.a2a.risk-assessor.replies"
    assert config.topics.subscribe == ("trading.signals",)


def test_the_operator_written_yaml_reads_back_identically(tmp_path: Path) -> None:
    config = parse_runtime_config(
        minimal(
            kafka={
                "bootstrapServers": "b:9093",
                "securityProtocol": "SASL_SSL",
                "saslMechanism": "SCRAM-SHA-512",
                "username": "risk-assessor",
                "passwordFile": "/var/run/chorus/kafka/password",
                "caFile": "/var/run/chorus/kafka/ca.crt",
            },
            model={
                "provider": "anthropic",
                "name": "claude-x",
                "apiKeyFile": "/var/run/chorus/model/key",
            },
            tools=[
                {
                    "name": "exchange",
                    "url": "http://exchange-mcp.trading:8000/mcp",
                    "allow": ["get_quote"],
                }
            ],
            skills=[{"id": "assess-risk", "name": "Assess risk"}],
        )
    )
    path = tmp_path / "runtime.yaml"
    path.write_text(runtime_config_yaml(config))
    assert load_runtime_config(path) == config
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps(runtime_config_document(config)))
    assert load_runtime_config(path) == config
    assert set(runtime_config_document(config)["kafka"]) == {
        "bootstrapServers",
        "securityProtocol",
        "saslMechanism",
        "username",
        "passwordFile",
        "caFile",
    }  # paths to secrets, never secrets


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (minimal(kafka={"bootstrapServers": "no-port"}), "kafka.bootstrapServers:"),
        (
            minimal(kafka={"bootstrapServers": "b:1", "securityProtocol": "SASL_SSL"}),
            "kafka.saslMechanism: required",
        ),
        (
            minimal(
                kafka={
                    "bootstrapServers": "b:1",
                    "securityProtocol": "SASL_SSL",
                    "saslMechanism": "SCRAM-SHA-512",
                    "username": "u",
                }
            ),
            "kafka.passwordFile: required",
        ),
        (
            minimal(kafka={"bootstrapServers": "b:1", "caFile": "/ca.crt"}),
            "kafka.securityProtocol: TLS files",
        ),
        (minimal(agent={"namespace": "trading", "name": "Risk"}), "agent.name:"),
        (minimal(handler=None), "<root>: set handler or instructions"),
        (minimal(handler=None, instructions="be careful"), "model: model is required"),
        (minimal(model={"provider": "openai"}), "model.name: name is required"),
        (
            minimal(tools=[{"name": "x", "allow": ["a"]}]),
            "tools[0]: set exactly one of url and command",
        ),
        (
            minimal(tools=[{"name": "x", "url": "http://x", "allow": ["a", "a"]}]),
            "tools[0].allow[1]: Duplicate",
        ),
        (minimal(delivery={"maxAttempts": 0}), "delivery.maxAttempts:"),
        (minimal(colour="blue"), "colour: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_field(document: dict[str, Any], expected: str) -> None:
    document = {k: v for k, v in document.items() if v is not None}
    assert expected in errors_of(document)


def test_an_invalid_identity_is_the_only_error() -> None:
    message = errors_of(minimal(agent={"namespace": "trading", "name": "a.b"}))
    assert "agent.name" in message
    assert "topics" not in message


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError, match=r"runtime config .*missing.yaml: cannot read"):
        load_runtime_config(tmp_path / "missing.yaml")
    bad = tmp_path / "runtime.yaml"
    bad.write_text("agent: [unclosed\n")
    with pytest.raises(RuntimeConfigError, match="not valid YAML"):
        load_runtime_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RuntimeConfigError, match="expected a mapping"):
        load_runtime_config(bad)


def test_the_json_schema_is_available_for_the_operator() -> None:
    schema = RuntimeConfig.model_json_schema(by_alias=True)
    assert {"agent", "kafka", "topics"} <= set(schema["required"])


def test_topic_names() -> None:
    assert topics.own_topics("trading", "risk") == {
        "inbox": "chorus.trading.a2a.risk.inbox",
        "replies": "chorus.trading.a2a.risk.replies",
        "deadLetter": "chorus.trading.risk.dlq",
        "tasks": "chorus.trading.risk.tasks",
    }
    assert topics.audit_topic("trading") == "chorus.trading.audit"
    assert topics.agent_card_key("trading", "risk") == "trading/risk"
    assert topics.consumer_group("trading", "risk") == "chorus.trading.risk"
    assert (
        topics.transactional_id("trading", "risk", "risk-7f9c-abcde")
        == "chorus.trading.risk.risk-7f9c-abcde"
    )
    assert topics.transactional_id("trading", "risk", "x").startswith(
        topics.transactional_id_prefix("trading", "risk")
    )
    for bad in [("Trading", "risk"), ("trading", "risk.x"), ("trading", "1risk"), ("-x", "risk")]:
        with pytest.raises(ValueError, match="not a"):
            topics.inbox_topic(*bad)
    with pytest.raises(ValueError, match="instance"):
        topics.transactional_id("trading", "risk", "a b")
