"""Every reference Agent and Tool, reconciled by the running operator against a real apiserver.

The test plays Strimzi, the Flink operator and the Deployment controller by patching the
children's status, and checks that the Agent's conditions and phase follow.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from chorus_api.examples import valid_examples
from chorus_api.topics import dead_letter_topic, inbox_topic, replies_topic

from tests.operator.conftest import Space
from tests.operator.harness import (
    Cluster,
    McpServer,
    Operator,
    deployment_available,
    flink_running,
    strimzi_ready,
    wait_for,
)


def example(name: str) -> dict[str, Any]:
    found = next(e for e in valid_examples() if e.name == name)
    return dict(found.document)


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def owned_by(obj: dict[str, Any], kind: str, name: str) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["kind"] == kind and r["name"] == name and r.get("controller") for r in refs)


def agent_status(cluster: Cluster, space: Space, name: str) -> dict[str, Any]:
    return dict((cluster.get("agent", name, space.ns) or {}).get("status") or {})


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or ()}


@pytest.fixture
def exchange_server() -> Any:
    server = McpServer(tools=("get_quote", "get_positions", "place_order")).start()
    yield server
    server.stop()


@pytest.mark.integration
def test_greeter_gets_its_children_and_becomes_ready_as_they_do(
    cluster: Cluster, space: Space, operator: Operator
) -> None:
    cluster.apply(example("agent-instructions"), space.ns)
    ns, kafka = space.ns, space.kafka

    deployment = wait_for(lambda: cluster.get("deployment", "greeter", ns), what="Deployment")
    for kind in ("deployment", "service", "configmap", "serviceaccount", "networkpolicy"):
        obj = wait_for(lambda k=kind: cluster.get(k, "greeter", ns), what=kind)  # type: ignore[misc]
        assert owned_by(obj, "Agent", "greeter"), kind
        assert obj["metadata"]["labels"]["chorus.dev/agent"] == "greeter"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "chorus-operator"
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["chorus.dev/config-hash"]
    assert template["spec"]["containers"][0]["image"].endswith("chorus-agent:0.1.0")

    topics = wait_for(
        lambda: {
            t["spec"]["topicName"]: t
            for t in cluster.list("kafkatopic", kafka, f"chorus.dev/agent={ns}.greeter")
        },
        what="KafkaTopics",
    )
    inbox, replies = inbox_topic(ns, "greeter"), replies_topic(ns, "greeter")
    assert {inbox, replies, dead_letter_topic(ns, "greeter")} <= set(topics)
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "chorus"
        assert not topic["metadata"].get("ownerReferences")  # another namespace
    users = cluster.list("kafkauser", kafka, "chorus.dev/owner-name=greeter")
    assert [u["metadata"]["name"] for u in users] == [f"{ns}.greeter"]
    acls = users[0]["spec"]["authorization"]["acls"]
    assert {"resource": {"type": "topic", "name": inbox, "patternType": "literal"},
            "operations": ["Describe", "Read"], "type": "allow", "host": "*"} in acls  # fmt: skip

    status = wait_for(lambda: agent_status(cluster, space, "greeter"), what="status")
    assert status["phase"] == "Pending"
    assert status["topics"]["inbox"] == inbox
    assert status["agentCard"]["name"] == "greeter"
    assert conditions(status)["ToolsResolved"] == ("True", "Resolved")
    assert conditions(status)["StreamsReady"] == ("True", "NoStreams")
    assert conditions(status)["TopicsReady"][0] != "True"
    assert conditions(status)["Ready"][0] == "False"
    assert all(
        c["observedGeneration"]
        == (cluster.get("agent", "greeter", ns) or {})["metadata"]["generation"]
        for c in status["conditions"]
    )

    # Strimzi reconciles the topics and the user; the Deployment controller rolls out.
    for topic in topics.values():
        strimzi_ready(cluster, "kafkatopic", topic["metadata"]["name"], kafka)
    wait_for(
        lambda: conditions(agent_status(cluster, space, "greeter"))["TopicsReady"][0] == "True",
        what="TopicsReady",
    )
    strimzi_ready(cluster, "kafkauser", f"{ns}.greeter", kafka)
    wait_for(
        lambda: conditions(agent_status(cluster, space, "greeter"))["AccessReady"][0] == "True",
        what="AccessReady",
    )
    deployment_available(cluster, "greeter", ns)
    ready = wait_for(
        lambda: (s := agent_status(cluster, space, "greeter")).get("phase") == "Ready" and s,
        what="phase Ready",
    )
    assert conditions(ready)["Ready"] == ("True", "Ready")

    # The Deployment loses its replicas: the agent is degraded, and an Event says why.
    cluster.patch_status("deployment", "greeter", ns, {"availableReplicas": 0})
    degraded = wait_for(
        lambda: (s := agent_status(cluster, space, "greeter")).get("phase") == "Degraded" and s,
        what="phase Degraded",
    )
    assert conditions(degraded)["WorkloadReady"] == ("False", "Unavailable")
    events = json.loads(
        cluster.kube.kubectl(
            "get", "events", "-n", ns, "--field-selector=involvedObject.name=greeter", "-o", "json"
        ).stdout
    )["items"]
    wait_for(
        lambda: any(
            e["reason"] == "Unavailable" and e["type"] == "Warning"
            for e in json.loads(
                cluster.kube.kubectl("get", "events", "-n", ns, "-o", "json").stdout
            )["items"]
        ),
        what="a Warning event",
    )
    assert isinstance(events, list)


@pytest.mark.integration
def test_risk_assessor_with_tools_streams_and_scaling(
    cluster: Cluster, space: Space, operator: Operator, exchange_server: McpServer
) -> None:
    ns, kafka = space.ns, space.kafka
    cluster.apply(secret("openai", ns, **{"api-key": "sk-test"}))
    exchange = {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": "exchange", "namespace": ns},
        "spec": {"mcp": {"url": exchange_server.url}},
    }
    cluster.apply(exchange)
    cluster.apply(example("agent"), ns)

    tool = wait_for(
        lambda: (
            (t := cluster.get("tool", "exchange", ns))
            and t.get("status", {}).get("discoveredToolCount")
            and t
        ),
        what="exchange discovered",
    )
    assert tool["status"]["discoveredToolCount"] == 3
    assert tool["status"]["endpoint"] == exchange_server.url
    assert {t["name"] for t in tool["status"]["discoveredTools"]} == {
        "get_quote", "get_positions", "place_order",
    }  # fmt: skip

    name = "risk-assessor"
    deployment = wait_for(lambda: cluster.get("deployment", name, ns), what="Deployment")
    hpa = wait_for(lambda: cluster.get("hpa", name, ns), what="HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 8
    assert "replicas" not in deployment["spec"] or hpa  # scaling owns the replica count
    flink = wait_for(
        lambda: cluster.list("flinkdeployment", ns, f"chorus.dev/agent={name}"), what="Flink"
    )
    assert len(flink) == 1 and owned_by(flink[0], "Agent", name)
    assert flink[0]["spec"]["job"]["parallelism"] == 2
    assert flink[0]["spec"]["job"]["upgradeMode"] == "savepoint"
    config = cluster.get("configmap", name, ns) or {}
    runtime = yaml.safe_load(config["data"]["runtime.yaml"])
    assert runtime["tools"][0]["url"] == exchange_server.url
    assert runtime["tools"][0]["allow"] == ["get_quote", "get_positions"]
    # Publish topics are shared (other Agents may publish to them too): owned by none.
    topics = {
        t["spec"]["topicName"]
        for t in cluster.list("kafkatopic", kafka, "chorus.dev/shared-topic=output")
    }
    assert {"trading.decisions", "trading.risk-scores"} <= topics
    own = {
        t["spec"]["topicName"]
        for t in cluster.list("kafkatopic", kafka, f"chorus.dev/agent={ns}.{name}")
    }
    assert inbox_topic(ns, name) in own and not own & topics

    # Everything the controllers would report: the agent becomes Ready.
    for topic in cluster.list("kafkatopic", kafka):
        strimzi_ready(cluster, "kafkatopic", topic["metadata"]["name"], kafka)
    for user in cluster.list("kafkauser", kafka, f"chorus.dev/owner-name={name}"):
        strimzi_ready(cluster, "kafkauser", user["metadata"]["name"], kafka)
    deployment_available(cluster, name, ns)
    waiting = wait_for(
        lambda: (s := agent_status(cluster, space, name)).get("phase") == "Degraded" and s,
        what="Degraded: the workload runs, the job does not yet",
    )
    assert conditions(waiting)["StreamsReady"] == ("Unknown", "Pending")
    assert conditions(waiting)["WorkloadReady"] == ("True", "Ready")
    flink_running(cluster, flink[0]["metadata"]["name"], ns)
    wait_for(lambda: agent_status(cluster, space, name).get("phase") == "Ready", what="Ready")

    # The job fails: the agent is Failed, with the reason.
    flink_running(cluster, flink[0]["metadata"]["name"], ns, state="FAILED")
    failed = wait_for(
        lambda: (s := agent_status(cluster, space, name)).get("phase") == "Failed" and s,
        what="phase Failed",
    )
    assert conditions(failed)["StreamsReady"] == ("False", "JobFailed")


@pytest.mark.integration
def test_tool_examples(cluster: Cluster, space: Space, operator: Operator) -> None:
    ns = space.ns
    cluster.apply(secret("exchange", ns, **{"api-key": "k"}))
    cluster.apply(example("tool-server"), ns)
    deployment = wait_for(lambda: cluster.get("deployment", "exchange-mcp", ns), what="server")
    service = cluster.get("service", "exchange-mcp", ns) or {}
    assert owned_by(deployment, "Tool", "exchange") and owned_by(service, "Tool", "exchange")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/chorus-dev/exchange-mcp:0.1.0"
    assert container["args"] == ["--seed", "42"]
    assert service["spec"]["ports"][0]["port"] == 8000
    tool = wait_for(
        lambda: (t := cluster.get("tool", "exchange", ns)) and t.get("status") and t, what="status"
    )
    assert tool["status"]["endpoint"] == f"http://exchange-mcp.{ns}.svc:8000/mcp"
    assert conditions(tool["status"])["ServerReady"][0] != "True"

    # market-data needs its token Secret: without it the Tool waits, with a reason.
    cluster.apply(example("tool-url"), ns)
    wait_for(
        lambda: (
            conditions((cluster.get("tool", "market-data", ns) or {}).get("status") or {}).get(
                "Discovered", ("", "")
            )[1]
            == "DiscoveryFailed"
        ),
        what="market-data DiscoveryFailed (its server does not exist)",
    )
