"""The Python side of the API: the models parse what the apiserver stores, and refuse
what it refuses, with an error naming the same field."""

from __future__ import annotations

from typing import Any

import pytest
from chorus_api import Agent, Tool, duration_ms, load_resources, parse_resource, to_manifest
from chorus_api.agent import AgentConditionType, Guarantee, Provider, UpgradeMode
from chorus_api.common import Phase
from chorus_api.crd import KINDS, openapi_schema
from chorus_api.examples import Example, invalid_examples, parse_example, valid_examples
from chorus_api.rules import describe_errors, error_paths, field_path
from chorus_api.schema import walk
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def agent(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "probe", "namespace": "tests"},
        "spec": {"handler": "chorus_agents.demo:Echo", **spec},
    }


def tool(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": "probe"},
        "spec": {"mcp": {"url": "http://probe:8000/mcp"}, **spec},
    }


def refusal(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_resource(document)
    return describe_errors(caught.value)


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("example", valid_examples(), ids=lambda e: e.name)
def test_valid_example_parses_and_round_trips(example: Example) -> None:
    resource = parse_resource(example.document)
    manifest = to_manifest(resource)
    assert parse_resource(manifest) == resource
    assert manifest["metadata"]["name"] == example.document["metadata"]["name"]


@pytest.mark.parametrize("example", invalid_examples(), ids=lambda e: e.name)
def test_invalid_example_is_refused_naming_the_field(example: Example) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_resource(example.document)
    paths = error_paths(caught.value)
    assert example.expect is not None
    assert any(path.startswith(example.expect) for path in paths), (
        f"{example.path}: expected an error at {example.expect}, "
        f"got {describe_errors(caught.value)}"
    )


def _cel_messages() -> set[str]:
    return {
        rule["message"]
        for info in KINDS
        for _, node in walk(openapi_schema(info))
        for rule in node.get("x-kubernetes-validations", [])
    }


CEL_REFUSED = [e for e in invalid_examples() if any(m in str(e.error) for m in _cel_messages())]


@pytest.mark.parametrize("example", CEL_REFUSED, ids=lambda e: e.name)
def test_a_cel_refusal_has_the_same_words_in_python(example: Example) -> None:
    message = next(m for m in _cel_messages() if m in str(example.error))
    assert message in "\n".join(refusal(example.document))


def test_every_cel_rule_has_an_invalid_example() -> None:
    covered = {m for m in _cel_messages() if any(m in str(e.error) for e in invalid_examples())}
    assert covered == _cel_messages()


def test_there_are_enough_invalid_examples() -> None:
    assert len(invalid_examples()) >= 12
    assert {e.document["kind"] for e in invalid_examples()} == {"Agent", "Tool"}


def test_an_invalid_example_must_say_what_error_to_expect() -> None:
    with pytest.raises(ValueError, match="expect"):
        parse_example("invalid/x.yaml", "# summary\napiVersion: v1\nkind: Agent\n")
    example = parse_example(
        "invalid/x.yaml", "# summary\n# expect: spec\n# error: e\nkind: Agent\n"
    )
    assert (example.summary, example.expect, example.error, example.body) == (
        "summary",
        "spec",
        "e",
        "kind: Agent\n",
    )


# --- defaults, aliases, immutability -----------------------------------------------------


def test_defaults_are_those_of_the_crd() -> None:
    parsed = Agent.model_validate(
        agent(publish=[{"topic": "a.b"}], streams=[{"name": "s", "job": "m.j"}])
    )
    assert parsed.spec.delivery.guarantee is Guarantee.EXACTLY_ONCE
    assert parsed.spec.delivery.max_attempts == 3
    assert parsed.spec.delivery.dead_letter is True
    assert (parsed.spec.publish[0].partitions, parsed.spec.publish[0].retention) == (3, "7d")
    assert parsed.spec.streams[0].parallelism == 1
    assert parsed.spec.streams[0].upgrade_mode is UpgradeMode.STATELESS
    assert Tool.model_validate(tool()).spec.timeout_seconds == 30


def test_fields_are_read_by_alias_or_by_name_and_written_by_alias() -> None:
    by_name = Agent.model_validate(agent(scaling={"max_replicas": 4, "min_replicas": 2}))
    by_alias = Agent.model_validate(agent(scaling={"maxReplicas": 4, "minReplicas": 2}))
    assert by_name == by_alias
    assert to_manifest(by_name)["spec"]["scaling"] == {
        "minReplicas": 2,
        "maxReplicas": 4,
        "lagThreshold": 1000,
    }


def test_models_are_immutable() -> None:
    parsed = Agent.model_validate(agent())
    with pytest.raises(ValidationError):
        parsed.spec.handler = "other:Handler"
    assert isinstance(parsed.spec.subscribe, tuple)


def test_an_unknown_spec_field_is_refused_but_unknown_metadata_is_kept() -> None:
    assert refusal(agent(maxReplica=3)) == ["spec.maxReplica: Extra inputs are not permitted"]
    document = agent()
    document["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert Agent.model_validate(document).metadata.model_extra == {
        "managedFields": [{"manager": "kubectl"}]
    }


def test_integers_and_booleans_are_strict_as_in_the_apiserver() -> None:
    assert refusal(agent(delivery={"maxAttempts": "5"})) == [
        "spec.delivery.maxAttempts: Input should be a valid integer"
    ]
    assert refusal(agent(delivery={"deadLetter": "yes"}))[0].startswith("spec.delivery.deadLetter:")


def test_delivery_limits_name_their_field_and_map_to_the_runtime() -> None:
    from chorus_api.runtime import RuntimeDelivery

    assert refusal(agent(delivery={"commitInterval": "5ms"})) == [
        "spec.delivery.commitInterval: Value error, commitInterval must be from 10ms to 1m, not 5ms"
    ]
    assert refusal(agent(delivery={"handlerTimeout": "2d"})) == [
        "spec.delivery.handlerTimeout: Value error, handlerTimeout must be from 1s to 1d, not 2d"
    ]
    assert refusal(agent(delivery={"maxInFlight": 0}))[0].startswith("spec.delivery.maxInFlight:")
    delivery = Agent.model_validate(
        agent(delivery={"maxInFlight": 128, "commitInterval": "250ms", "handlerTimeout": "90s"})
    ).spec.delivery
    runtime = RuntimeDelivery.of(delivery)
    assert (runtime.max_in_flight, runtime.commit_interval_ms) == (128, 250)
    assert runtime.handler_timeout_seconds == 90.0


# --- the rules ---------------------------------------------------------------------------


def test_handler_alone_needs_no_model_and_scripted_needs_no_name() -> None:
    Agent.model_validate(agent())
    Agent.model_validate(
        {**agent(), "spec": {"instructions": "Hi.", "model": {"provider": "scripted"}}}
    )
    assert refusal(agent(model={"provider": Provider.OPENAI.value})) == [
        "spec.model.name: name is required unless provider is scripted"
    ]


@pytest.mark.parametrize("name", ["a", "...", "x" * 249, "Trading_signals-2.v1"])
def test_topic_names_kafka_accepts(name: str) -> None:
    Agent.model_validate(agent(subscribe=[{"topic": name}]))


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "a b", "a/b", "ä"])
def test_topic_names_kafka_refuses(name: str) -> None:
    assert error_paths_of(agent(subscribe=[{"topic": name}])) == ["spec.subscribe[0].topic"]


def error_paths_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_resource(document)
    return sorted(set(error_paths(caught.value)))


def test_scaling_bounds() -> None:
    Agent.model_validate(agent(scaling={"minReplicas": 0, "maxReplicas": 1}))
    Agent.model_validate(agent(scaling={"minReplicas": 3, "maxReplicas": 3}))
    assert error_paths_of(agent(scaling={"minReplicas": 2})) == ["spec.scaling.maxReplicas"]
    assert error_paths_of(agent(scaling={"maxReplicas": 0})) == ["spec.scaling.maxReplicas"]


def test_duplicates_are_named_by_index() -> None:
    assert refusal(agent(tools=[{"ref": "a", "allow": ["x"]}, {"ref": "a", "allow": ["y"]}])) == [
        'spec.tools[1]: Duplicate value: "a"'
    ]
    assert error_paths_of(agent(skills=[{"id": "s", "name": "S", "tags": ["t", "t"]}])) == [
        "spec.skills[0].tags[1]"
    ]
    assert error_paths_of(agent(tools=[{"ref": "a", "allow": []}])) == ["spec.tools[0].allow"]


def test_a_tool_is_a_url_or_a_server() -> None:
    Tool.model_validate(tool())
    Tool.model_validate(tool(mcp={"server": {"image": "img:1"}}))
    assert error_paths_of(tool(mcp={})) == ["spec.mcp"]
    assert error_paths_of(tool(timeoutSeconds=0)) == ["spec.timeoutSeconds"]
    server = Tool.model_validate(tool(mcp={"server": {"image": "img:1"}})).spec.mcp.server
    assert server is not None
    assert (server.port, server.path) == (8000, "/mcp")


@pytest.mark.parametrize("quantity", [1, "2", "500m", "1.5Gi", "1e3"])
def test_resource_quantities(quantity: int | str) -> None:
    Agent.model_validate(agent(resources={"limits": {"cpu": quantity}}))


def test_a_bad_quantity_is_refused() -> None:
    assert error_paths_of(agent(resources={"limits": {"cpu": "lots"}})) == [
        "spec.resources.limits.cpu"
    ]


def test_the_name_must_be_a_dns_label() -> None:
    document = agent()
    document["metadata"]["name"] = "Risk"
    assert error_paths_of(document) == ["metadata.name"]


@pytest.mark.parametrize(
    ("text", "ms"), [("500ms", 500), ("45s", 45_000), ("30m", 1_800_000), ("7d", 604_800_000)]
)
def test_duration_ms(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["0d", "7", "1w", "-1h", "7 d"])
def test_duration_ms_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_ms(text)
    assert error_paths_of(agent(publish=[{"topic": "t", "retention": text}])) == [
        "spec.publish[0].retention"
    ]


# --- status and loading ------------------------------------------------------------------


def test_status_as_the_operator_writes_it() -> None:
    document = agent()
    document["status"] = {
        "phase": "Ready",
        "observedGeneration": 3,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllReady",
                "message": "ok",
                "lastTransitionTime": "2025-01-02T03:04:05Z",
                "observedGeneration": 3,
            }
        ],
        "topics": {"inbox": "chorus.tests.probe.inbox", "deadLetter": "chorus.tests.probe.dlq"},
        "agentCard": {"name": "probe", "skills": [{"id": "x"}]},
        "someFutureField": 1,
    }
    parsed = Agent.model_validate(document)
    assert parsed.status is not None
    assert parsed.status.phase is Phase.READY
    assert parsed.status.topics is not None
    assert parsed.status.topics.dead_letter == "chorus.tests.probe.dlq"
    ready = parsed.condition(AgentConditionType.READY)
    assert ready is not None
    assert ready.status == "True"
    assert parsed.condition("TopicsReady") is None
    status = to_manifest(parsed)["status"]
    assert status["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert "someFutureField" not in status


def test_tool_status() -> None:
    document = tool()
    document["status"] = {
        "discoveredTools": [{"name": "get_quote", "description": "A quote"}],
        "discoveredToolCount": 1,
        "endpoint": "http://probe:8000/mcp",
    }
    parsed = Tool.model_validate(document)
    assert parsed.status is not None
    assert parsed.status.discovered_tools[0].name == "get_quote"


def test_load_resources_reads_a_multi_document_manifest() -> None:
    text = "\n---\n".join(e.body for e in valid_examples()) + "\n---\n"
    resources = load_resources(text)
    assert [r.metadata.name for r in resources] == [
        e.document["metadata"]["name"] for e in valid_examples()
    ]


def test_parse_resource_refuses_other_kinds() -> None:
    with pytest.raises(ValueError, match="ConfigMap/x: not a Chorus resource"):
        parse_resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})


def test_field_path_reads_like_the_apiservers() -> None:
    assert field_path(("spec", "publish", 0, "topic")) == "spec.publish[0].topic"
    assert field_path(()) == ""
