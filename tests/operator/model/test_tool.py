from __future__ import annotations

import pytest
from chorus_api.tool import Tool
from chorus_operator.model import DependencyNotReady, OperatorSettings, ToolInputs, build_tool
from chorus_operator.model.tool import resolve_tool

SETTINGS = OperatorSettings(agent_image="agent:1", flink_image="flink:1")


def tool(mcp: dict[str, object], status: dict[str, object] | None = None) -> Tool:
    body: dict[str, object] = {"metadata": {"name": "ex", "namespace": "ns"}, "spec": {"mcp": mcp}}
    if status is not None:
        body["status"] = status
    return Tool.model_validate(body)


@pytest.mark.unit
def test_a_server_tool_gets_a_deployment_a_service_and_an_in_cluster_endpoint() -> None:
    plan = build_tool(ToolInputs(tool({"server": {"image": "i", "port": 9000}}), "u", SETTINGS))
    assert [c["kind"] for c in plan.children] == ["Deployment", "Service"]
    assert plan.endpoint == "http://ex-mcp.ns.svc:9000/mcp"


@pytest.mark.unit
def test_a_remote_tool_has_no_children() -> None:
    plan = build_tool(ToolInputs(tool({"url": "https://mcp.example.com/mcp"}), "u", SETTINGS))
    assert plan.children == () and plan.endpoint == "https://mcp.example.com/mcp"


@pytest.mark.unit
def test_the_bearer_token_reaches_the_server_from_its_secret() -> None:
    auth = {"bearerTokenSecretRef": {"name": "tok", "key": "t"}}
    plan = build_tool(ToolInputs(tool({"server": {"image": "i"}, "auth": auth}), "u", SETTINGS))
    env = plan.children[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "MCP_BEARER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t"}}}
    ]


@pytest.mark.unit
def test_a_missing_secret_is_a_dependency_not_ready() -> None:
    auth = {"bearerTokenSecretRef": {"name": "tok", "key": "t"}}
    inputs = ToolInputs(
        tool({"server": {"image": "i"}, "auth": auth}), "u", SETTINGS, {"tok": False}
    )
    with pytest.raises(DependencyNotReady) as caught:
        build_tool(inputs)
    assert caught.value.reason == "SecretMissing"
    assert "tool ns/ex: spec.mcp.auth.bearerTokenSecretRef: secret 'tok'" in str(caught.value)


@pytest.mark.unit
def test_resolve_tool_is_undiscovered_until_the_status_lists_tools() -> None:
    assert resolve_tool(tool({"url": "http://x:1/mcp"})).offered is None
    found = resolve_tool(
        tool(
            {"url": "http://x:1/mcp"},
            {"discoveredToolCount": 1, "discoveredTools": [{"name": "a"}]},
        )
    )
    assert found.offered == ("a",) and found.pod_labels is None
