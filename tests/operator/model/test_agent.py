from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from chorus_api.agent import Agent
from chorus_operator.model import (
    AgentInputs,
    DependencyNotReady,
    OperatorSettings,
    ResolvedTool,
    SpecInvalid,
    build_agent,
)

from tests.operator.model.golden import agent_inputs, build_case, cases, load_case

SETTINGS = OperatorSettings(agent_image="agent:1", flink_image="flink:1")
EXCHANGE = ResolvedTool(
    name="exchange",
    namespace="trading",
    endpoint="http://exchange-mcp.trading.svc:8000/mcp",
    offered=("get_quote", "place_order"),
)


def agent(**spec: Any) -> Agent:
    return Agent.model_validate(
        {
            "metadata": {"name": "risk", "namespace": "trading"},
            "spec": {"handler": "m:A", **spec},
        }
    )


def inputs(a: Agent, **changes: Any) -> AgentInputs:
    base = AgentInputs(agent=a, uid="u-1", tools={"exchange": EXCHANGE}, settings=SETTINGS)
    return dataclasses.replace(base, **changes)


def child(plan_children: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    return next(c for c in plan_children if c["kind"] == kind)


@pytest.mark.unit
def test_a_missing_tool_is_a_dependency_not_ready() -> None:
    a = agent(tools=[{"ref": "exchange", "allow": ["get_quote"]}])
    with pytest.raises(DependencyNotReady) as caught:
        build_agent(inputs(a, tools={"exchange": None}))
    assert caught.value.reason == "ToolNotFound"
    assert caught.value.condition_type == "ToolsResolved"
    assert str(caught.value) == "agent trading/risk: tool 'exchange' does not exist"


@pytest.mark.unit
def test_an_undiscovered_tool_is_a_dependency_not_ready() -> None:
    a = agent(tools=[{"ref": "exchange", "allow": ["get_quote"]}])
    undiscovered = dataclasses.replace(EXCHANGE, offered=None)
    with pytest.raises(DependencyNotReady) as caught:
        build_agent(inputs(a, tools={"exchange": undiscovered}))
    assert caught.value.reason == "ToolNotDiscovered"


@pytest.mark.unit
def test_allowing_a_tool_the_server_does_not_offer_is_spec_invalid() -> None:
    a = agent(tools=[{"ref": "exchange", "allow": ["get_quote", "cancel_all"]}])
    with pytest.raises(SpecInvalid) as caught:
        build_agent(inputs(a))
    assert caught.value.reason == "ToolDoesNotOffer"
    assert str(caught.value) == "agent trading/risk: tool 'exchange' does not offer 'cancel_all'"


@pytest.mark.unit
def test_spec_invalid_wins_over_a_missing_dependency() -> None:
    a = agent(
        tools=[{"ref": "exchange", "allow": ["cancel_all"]}, {"ref": "other", "allow": ["x"]}]
    )
    with pytest.raises(SpecInvalid) as caught:
        build_agent(inputs(a, tools={"exchange": EXCHANGE, "other": None}))
    assert "does not offer 'cancel_all'" in str(caught.value)
    assert "tool 'other' does not exist" in str(caught.value)


@pytest.mark.unit
def test_an_unknown_stream_job_is_spec_invalid() -> None:
    a = agent(streams=[{"name": "s", "job": "chorus_flink.jobs.nope"}])
    with pytest.raises(SpecInvalid) as caught:
        build_agent(inputs(a))
    assert caught.value.reason == "UnknownStreamJob"
    assert caught.value.condition_type == "StreamsReady"
    assert str(caught.value).startswith("agent trading/risk: streams: stream 's'")


@pytest.mark.unit
def test_a_bad_stream_config_is_spec_invalid() -> None:
    a = agent(streams=[{"name": "s", "job": "chorus_flink.jobs.trading", "config": {"x": "1"}}])
    with pytest.raises(SpecInvalid) as caught:
        build_agent(inputs(a))
    assert caught.value.reason == "InvalidStreamConfig"
    assert "config.x is not a parameter" in str(caught.value)


@pytest.mark.unit
def test_a_missing_model_secret_is_a_dependency_not_ready() -> None:
    a = agent(
        model={"provider": "openai", "name": "m", "apiKeySecretRef": {"name": "k", "key": "v"}}
    )
    with pytest.raises(DependencyNotReady) as caught:
        build_agent(inputs(a, secrets_present={"k": False}))
    assert caught.value.reason == "SecretMissing"
    assert "secret 'k' does not exist" in str(caught.value)


@pytest.mark.unit
def test_config_hash_changes_with_the_spec_and_not_otherwise() -> None:
    a = agent(instructions="one")
    first = build_agent(inputs(a))
    again = build_agent(inputs(agent(instructions="one"), uid="u-2"))
    changed = build_agent(inputs(agent(instructions="two")))
    assert first.config_hash == again.config_hash
    assert first.config_hash != changed.config_hash
    template = child(changed.children, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"]["chorus.dev/config-hash"] == changed.config_hash


@pytest.mark.unit
@pytest.mark.parametrize("case", [c for c in cases() if c.startswith("agent")])
def test_building_twice_gives_identical_manifests(case: str) -> None:
    assert build_case(case) == build_case(case)


@pytest.mark.unit
@pytest.mark.parametrize("case", cases())
def test_every_child_is_labelled_and_owned_where_it_can_be(case: str) -> None:
    document = load_case(case)
    kind = "Agent" if "agent" in document else "Tool"
    owner_namespace = document[kind.lower()]["metadata"]["namespace"]
    for c in build_case(case).children:
        labels = c["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "chorus"
        assert labels["app.kubernetes.io/managed-by"] == "chorus-operator"
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= labels.keys()
        if labels.get("chorus.dev/shared-topic"):
            continue
        assert "chorus.dev/agent" in labels or "chorus.dev/tool" in labels
        owners = c["metadata"].get("ownerReferences", [])
        if c["metadata"]["namespace"] == owner_namespace:
            assert [(o["kind"], o["controller"], o["blockOwnerDeletion"]) for o in owners] == [
                (kind, True, True)
            ]
        else:
            assert owners == []


@pytest.mark.unit
@pytest.mark.parametrize("case", [c for c in cases() if c.startswith("agent")])
def test_no_secret_is_made_copied_or_inlined(case: str) -> None:
    plan = build_agent(agent_inputs(load_case(case)))
    text = json.dumps(plan.children)
    assert all(c["kind"] != "Secret" for c in plan.children)
    for c in plan.children:
        for container in _containers(c):
            for env in container.get("env", []):
                assert "value" not in env or not _secretish(env["name"]), env
    # The runtime config names files and Secret references, never a credential value.
    kafka = plan.runtime_config.kafka.model_dump(exclude_none=True, by_alias=False)
    assert set(kafka) <= {
        "bootstrap_servers", "security_protocol", "sasl_mechanism", "username",
        "password_file", "ca_file", "cert_file", "key_file",
        "password_secret", "ca_secret", "cert_secret", "key_secret",
    }  # fmt: skip
    assert 'sasl.jaas.config":' not in text


@pytest.mark.unit
def test_kafka_secrets_are_mounted_in_the_same_namespace_and_read_via_the_api_elsewhere() -> None:
    same = build_agent(agent_inputs(load_case("agent-scram-same-namespace")))
    remote = build_agent(agent_inputs(load_case("agent-scram-remote")))
    assert same.runtime_config.kafka.password_file is not None
    assert same.runtime_config.kafka.password_secret is None
    assert all(c["kind"] not in {"Role", "RoleBinding"} for c in same.children)
    assert remote.runtime_config.kafka.password_secret is not None
    role = child(remote.children, "Role")
    assert role["rules"][0]["resourceNames"] == ["chorus-cluster-ca-cert", "trading.risk-assessor"]
    assert role["rules"][0]["verbs"] == ["get"]


@pytest.mark.unit
def test_scaling_makes_an_hpa_without_keda_and_a_scaled_object_with_it() -> None:
    a = agent(subscribe=[{"topic": "t"}], scaling={"maxReplicas": 4, "lagThreshold": 50})
    hpa = build_agent(inputs(a)).children
    keda = build_agent(inputs(a, keda_available=True)).children
    assert [c["kind"] for c in hpa if c["kind"] in {"HorizontalPodAutoscaler", "ScaledObject"}] == [
        "HorizontalPodAutoscaler"
    ]
    scaled = child(keda, "ScaledObject")
    assert [t["metadata"]["topic"] for t in scaled["spec"]["triggers"]] == [
        "chorus.trading.a2a.risk.inbox",
        "t",
    ]
    assert {t["metadata"]["lagThreshold"] for t in scaled["spec"]["triggers"]} == {"50"}
    assert "replicas" not in child(keda, "Deployment")["spec"]


@pytest.mark.unit
def test_topics_summary_and_tasks_topic_is_compacted() -> None:
    plan = build_agent(inputs(agent()))
    assert dict(plan.topics) == {
        "inbox": "chorus.trading.a2a.risk.inbox",
        "replies": "chorus.trading.a2a.risk.replies",
        "deadLetter": "chorus.trading.risk.dlq",
    }
    topics = {c["spec"]["topicName"]: c for c in plan.children if c["kind"] == "KafkaTopic"}
    assert topics["chorus.trading.risk.tasks"]["spec"]["config"] == {"cleanup.policy": "compact"}
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "chorus" for t in topics.values())


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest.get("spec", {})
    pod = spec.get("template", spec.get("podTemplate", {})).get("spec", {})
    return list(pod.get("containers", []))


def _secretish(name: str) -> bool:
    return any(word in name.upper() for word in ("PASSWORD", "TOKEN", "SECRET", "API_KEY"))


@pytest.mark.unit
def test_a_topic_several_agents_publish_is_one_shared_topic_owned_by_none() -> None:
    # The traffic domain's four signal-control Agents all publish traffic.signal-plans.
    def plan_of(name: str) -> dict[str, Any]:
        a = Agent.model_validate(
            {
                "metadata": {"name": name, "namespace": "traffic"},
                "spec": {
                    "handler": "m:A",
                    "publish": [{"topic": "traffic.signal-plans", "partitions": 6}],
                },
            }
        )
        plan = build_agent(inputs(a, uid=f"uid-{name}"))
        return next(c for c in plan.children if c["metadata"]["name"] == "traffic.signal-plans")

    north, south = plan_of("signals-north"), plan_of("signals-south")
    assert north == south  # whichever Agent comes first creates the same KafkaTopic
    labels = north["metadata"]["labels"]
    assert labels["chorus.dev/shared-topic"] == "output"
    assert "chorus.dev/agent" not in labels and "chorus.dev/owner-name" not in labels
    assert "ownerReferences" not in north["metadata"]  # no Agent's deletion takes it along
    assert north["spec"]["partitions"] == 6
    # Its own topics stay its own.
    own = build_agent(inputs(agent())).children
    inbox = next(c for c in own if c["metadata"]["name"] == "chorus.trading.a2a.risk.inbox")
    assert inbox["metadata"]["labels"]["chorus.dev/agent"] == "trading.risk"
