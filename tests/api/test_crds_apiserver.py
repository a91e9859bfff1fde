"""The CRDs on a real kube-apiserver: valid examples are stored with the defaults the models
fill in, invalid ones are refused by the apiserver itself with an error naming the field,
and status, printer columns, short names and categories work as declared."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from chorus_api import Agent, Tool, parse_resource, to_manifest
from chorus_api.examples import Example, invalid_examples, valid_examples

from tests.services.kube import KubeCluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"api-{secrets.token_hex(3)}"
    kube.kubectl("create", "namespace", name)
    yield name
    # No namespace controller runs here: the namespace stays Terminating, which is harmless.
    kube.kubectl("delete", "namespace", name, "--wait=false")


def create(kube: KubeCluster, namespace: str, text: str, *, check: bool = True) -> Any:
    """``kubectl create --validate=false``: the client does not check, the apiserver does."""
    return kube.kubectl(
        "create", "-n", namespace, "--validate=false", "-f", "-", input=text, check=check
    )


def get(kube: KubeCluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    result = kube.kubectl("get", "-n", namespace, kind, name, "-o", "json")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("example", valid_examples(), ids=lambda e: e.name)
def test_valid_example_is_stored_with_the_models_defaults(
    kube: KubeCluster, namespace: str, example: Example
) -> None:
    document = dict(example.document)
    document["metadata"] = {**document["metadata"], "namespace": namespace}
    kube.apply(document)  # server-side apply, strict: an unknown field would fail here
    stored = get(kube, namespace, example.document["kind"], example.document["metadata"]["name"])
    # The apiserver's defaults and the models' defaults are the same.
    assert stored["spec"] == to_manifest(parse_resource(example.document))["spec"]
    parsed = parse_resource(stored)
    assert parsed.metadata.namespace == namespace
    assert parsed.metadata.generation == 1


@pytest.mark.parametrize("example", invalid_examples(), ids=lambda e: e.name)
def test_invalid_example_is_refused_by_the_apiserver(
    kube: KubeCluster, namespace: str, example: Example
) -> None:
    result = create(kube, namespace, example.text, check=False)
    assert result.returncode != 0, f"{example.path} was accepted:\n{result.stdout}"
    assert "is invalid" in result.stderr, result.stderr
    assert str(example.expect) in result.stderr, result.stderr
    assert str(example.error) in result.stderr, result.stderr


def test_defaults_fill_in_an_agent_that_omits_everything_optional(
    kube: KubeCluster, namespace: str
) -> None:
    create(
        kube,
        namespace,
        "apiVersion: chorus.dev/v1alpha1\nkind: Agent\nmetadata: {name: bare}\n"
        "spec:\n  handler: chorus_agents.demo:Echo\n  publish: [{topic: bare.out}]\n"
        "  streams: [{name: s, job: chorus_flink.demo}]\n",
    )
    spec = get(kube, namespace, "agent", "bare")["spec"]
    assert spec["delivery"] == {
        "guarantee": "exactly-once",
        "maxAttempts": 3,
        "deadLetter": True,
        "maxInFlight": 64,
        "commitInterval": "100ms",
        "handlerTimeout": "10m",
    }
    assert spec["publish"] == [{"topic": "bare.out", "partitions": 3, "retention": "7d"}]
    assert spec["streams"][0]["parallelism"] == 1
    assert spec["streams"][0]["upgradeMode"] == "stateless"


def _patch_status(kube: KubeCluster, namespace: str, kind: str, name: str, status: Any) -> Any:
    return kube.kubectl(
        "patch", "-n", namespace, kind, name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}), check=False,
    )  # fmt: skip


def test_agent_status_subresource_and_printer_columns(kube: KubeCluster, namespace: str) -> None:
    name = "status-probe"
    create(
        kube,
        namespace,
        f"apiVersion: chorus.dev/v1alpha1\nkind: Agent\nmetadata: {{name: {name}}}\n"
        "spec: {handler: 'chorus_agents.demo:Echo'}\n",
    )
    status = {
        "phase": "Ready",
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllReady",
                "message": "every child is ready",
                "lastTransitionTime": "2025-01-02T03:04:05Z",
                "observedGeneration": 1,
            }
        ],
        "topics": {"inbox": f"chorus.{namespace}.{name}.inbox"},
        "agentCard": {"name": name, "skills": [{"id": "echo", "tags": ["x"]}]},
    }
    _patch_status(kube, namespace, "agent", name, status).check_returncode()

    stored = Agent.model_validate(get(kube, namespace, "agent", name))
    assert stored.status is not None
    assert stored.status.agent_card == status["agentCard"]  # free-form: kept as written
    ready = stored.condition("Ready")
    assert ready is not None
    assert ready.reason == "AllReady"

    table = kube.kubectl("get", "-n", namespace, "ag", name, "-o", "wide").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "PHASE", "INBOX", "AGE"]
    assert table[1].split()[:4] == [name, "True", "Ready", f"chorus.{namespace}.{name}.inbox"]

    # Writing the spec does not touch the status, and the status is validated too.
    patch = json.dumps({"spec": {"description": "changed"}})
    kube.kubectl("patch", "-n", namespace, "agent", name, "--type=merge", "-p", patch)
    after = get(kube, namespace, "agent", name)
    assert (after["metadata"]["generation"], after["status"]["phase"]) == (2, "Ready")
    refused = _patch_status(kube, namespace, "agent", name, {"phase": "Sleeping"})
    assert refused.returncode != 0
    assert 'status.phase: Unsupported value: "Sleeping"' in refused.stderr


def test_tool_printer_columns_show_the_discovered_tool_count(
    kube: KubeCluster, namespace: str
) -> None:
    name = "count-probe"
    create(
        kube,
        namespace,
        f"apiVersion: chorus.dev/v1alpha1\nkind: Tool\nmetadata: {{name: {name}}}\n"
        "spec: {mcp: {url: 'http://probe:8000/mcp'}}\n",
    )
    status = {
        "conditions": [{"type": "Ready", "status": "False", "reason": "Unreachable"}],
        "endpoint": "http://probe:8000/mcp",
        "discoveredTools": [{"name": "a", "description": "A"}, {"name": "b"}],
        "discoveredToolCount": 2,
    }
    _patch_status(kube, namespace, "tool", name, status).check_returncode()
    table = kube.kubectl("get", "-n", namespace, "tl", name).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "TOOLS", "AGE"]
    assert table[1].split()[:3] == [name, "False", "2"]
    stored = Tool.model_validate(get(kube, namespace, "tool", name))
    assert stored.status is not None
    assert [t.name for t in stored.status.discovered_tools] == ["a", "b"]


def test_the_chorus_category_lists_both_kinds(kube: KubeCluster, namespace: str) -> None:
    create(
        kube,
        namespace,
        "apiVersion: chorus.dev/v1alpha1\nkind: Tool\nmetadata: {name: category-probe}\n"
        "spec: {mcp: {url: 'http://probe:8000/mcp'}}\n---\n"
        "apiVersion: chorus.dev/v1alpha1\nkind: Agent\nmetadata: {name: category-probe}\n"
        "spec: {handler: 'chorus_agents.demo:Echo'}\n",
    )
    names = kube.kubectl("get", "-n", namespace, "chorus", "-o", "name").stdout.split()
    assert "agent.chorus.dev/category-probe" in names
    assert "tool.chorus.dev/category-probe" in names


def test_an_update_is_validated_like_a_create(kube: KubeCluster, namespace: str) -> None:
    create(
        kube,
        namespace,
        "apiVersion: chorus.dev/v1alpha1\nkind: Agent\nmetadata: {name: update-probe}\n"
        "spec: {handler: 'chorus_agents.demo:Echo', scaling: {maxReplicas: 4}}\n",
    )
    result = kube.kubectl(
        "patch", "-n", namespace, "agent", "update-probe", "--type=merge",
        "-p", '{"spec": {"scaling": {"minReplicas": 9}}}', check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.scaling.maxReplicas: Invalid value" in result.stderr
