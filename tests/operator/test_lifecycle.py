"""The running operator over an Agent's life: dependencies in any order, drift, updates,
removed streams, bad specs, deletion, restarts and two replicas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chorus_api.topics import a2a_prefix

from tests.operator.conftest import Space, start_operator
from tests.operator.harness import Cluster, McpServer, Operator, unique, wait_for

SIGNALS = "chorus_flink.jobs.trading"
STRIMZI = "strimzi.io/topic-operator"


def agent(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"instructions": "Answer.", "model": {"provider": "scripted"}, **spec},
    }


def url_tool(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": name},
        "spec": {"mcp": {"url": url}},
    }


def condition(cluster: Cluster, space: Space, name: str, type_: str) -> tuple[str, str]:
    found = cluster.condition("agent", name, space.ns, type_) or {}
    return found.get("status", ""), found.get("reason", "")


def phase(cluster: Cluster, space: Space, name: str) -> str:
    return str(((cluster.get("agent", name, space.ns) or {}).get("status") or {}).get("phase"))


@pytest.fixture
def mcp() -> Iterator[McpServer]:
    server = McpServer(tools=("lookup", "search")).start()
    yield server
    server.stop()


@pytest.mark.integration
def test_agent_before_tool_then_tool_deleted_and_recreated(
    cluster: Cluster, space: Space, operator: Operator, mcp: McpServer
) -> None:
    ns = space.ns
    cluster.apply(agent("scout", tools=[{"ref": "finder", "allow": ["lookup"]}]), ns)
    wait_for(
        lambda: condition(cluster, space, "scout", "ToolsResolved") == ("False", "ToolNotFound"),
        what="ToolNotFound",
    )
    assert phase(cluster, space, "scout") == "Pending"
    assert cluster.get("deployment", "scout", ns) is None  # nothing is made while waiting
    message = (cluster.condition("agent", "scout", ns, "ToolsResolved") or {})["message"]
    assert f"agent {ns}/scout" in message and "'finder'" in message

    cluster.apply(url_tool("finder", mcp.url), ns)
    wait_for(lambda: cluster.get("deployment", "scout", ns), what="Deployment once the Tool is")
    wait_for(
        lambda: condition(cluster, space, "scout", "ToolsResolved") == ("True", "Resolved"),
        what="ToolsResolved",
    )

    cluster.delete("tool", "finder", ns)
    wait_for(
        lambda: condition(cluster, space, "scout", "ToolsResolved") == ("False", "ToolNotFound"),
        what="ToolNotFound after the Tool is deleted",
    )
    assert cluster.get("deployment", "scout", ns) is not None  # a running agent is kept
    cluster.apply(url_tool("finder", mcp.url), ns)
    wait_for(
        lambda: condition(cluster, space, "scout", "ToolsResolved") == ("True", "Resolved"),
        what="ToolsResolved after the Tool is recreated",
    )


@pytest.mark.integration
def test_drift_is_restored_updates_roll_and_removed_streams_go(
    cluster: Cluster, space: Space, operator: Operator
) -> None:
    ns = space.ns
    streams = [
        {"name": "signals", "job": SIGNALS},
        {"name": "backup", "job": SIGNALS, "config": {"signals_topic": "trading.backup"}},
    ]
    cluster.apply(agent("trader", streams=streams), ns)
    deployment = wait_for(lambda: cluster.get("deployment", "trader", ns), what="Deployment")
    flinks = wait_for(
        lambda: (
            len(names := cluster.names("flinkdeployment", ns, "chorus.dev/agent=trader")) == 2
            and names
        ),
        what="two FlinkDeployments",
    )
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    # A hand edit of a field the operator owns is undone; a deleted child comes back.
    cluster.kube.kubectl(
        "set", "image", "deployment/trader", "-n", ns, f"{_container(deployment)}=evil:1"
    )
    wait_for(
        lambda: _image(cluster.get("deployment", "trader", ns)) == image, what="image restored"
    )
    cluster.delete("configmap", "trader", ns)
    wait_for(lambda: cluster.get("configmap", "trader", ns), what="ConfigMap recreated")

    # A spec change rolls the Deployment: a new config hash on the pod template.
    before = _hash(cluster.get("deployment", "trader", ns))
    cluster.patch("agent", "trader", ns, {"spec": {"instructions": "Answer briefly."}})
    wait_for(lambda: _hash(cluster.get("deployment", "trader", ns)) != before, what="new hash")

    # Removing a stream removes its FlinkDeployment.
    cluster.patch("agent", "trader", ns, {"spec": {"streams": streams[:1]}})
    remaining = wait_for(
        lambda: (
            len(n := cluster.names("flinkdeployment", ns, "chorus.dev/agent=trader")) == 1 and n
        ),
        what="one FlinkDeployment left",
    )
    assert remaining < flinks


@pytest.mark.integration
@pytest.mark.parametrize(
    ("spec", "condition_type", "reason", "final_phase"),
    [
        ({"tools": [{"ref": "ghost", "allow": ["x"]}]}, "ToolsResolved", "ToolNotFound", "Pending"),
        (
            {"tools": [{"ref": "finder", "allow": ["lookup", "delete_everything"]}]},
            "ToolsResolved",
            "ToolDoesNotOffer",
            "Failed",
        ),
        (
            {"streams": [{"name": "s", "job": "chorus_flink.jobs.nope"}]},
            "StreamsReady",
            "UnknownStreamJob",
            "Failed",
        ),
    ],
    ids=["unknown-tool", "allow-not-offered", "unknown-job"],
)
def test_bad_specs_get_a_condition_and_no_children(
    cluster: Cluster,
    space: Space,
    operator: Operator,
    mcp: McpServer,
    spec: dict[str, Any],
    condition_type: str,
    reason: str,
    final_phase: str,
) -> None:
    ns = space.ns
    cluster.apply(url_tool("finder", mcp.url), ns)
    wait_for(
        lambda: (
            (cluster.get("tool", "finder", ns) or {}).get("status", {}).get("discoveredToolCount")
        ),
        what="finder discovered",
    )
    cluster.apply(agent("broken", **spec), ns)
    wait_for(
        lambda: condition(cluster, space, "broken", condition_type) == ("False", reason),
        what=f"{condition_type} {reason}",
    )
    assert phase(cluster, space, "broken") == final_phase
    assert condition(cluster, space, "broken", "Ready")[0] == "False"
    for kind in ("deployment", "configmap", "service", "flinkdeployment"):
        assert not cluster.names(kind, ns, "chorus.dev/agent=broken"), kind
    assert not cluster.names("kafkatopic", space.kafka, f"chorus.dev/agent={ns}.broken")
    assert operator.healthy()


@pytest.mark.integration
def test_deleting_an_agent_retains_its_kafka_topics_and_removes_its_user(
    cluster: Cluster, space: Space, operator: Operator
) -> None:
    ns, kafka = space.ns, space.kafka
    cluster.apply(agent("leaver"), ns)
    selector = f"chorus.dev/agent={ns}.leaver"
    topics = wait_for(lambda: cluster.names("kafkatopic", kafka, selector), what="topics")
    wait_for(lambda: cluster.names("kafkauser", kafka, selector), what="KafkaUser")
    body = cluster.get("agent", "leaver", ns) or {}
    assert "chorus.dev/cleanup" in body["metadata"].get("finalizers", [])

    # Strimzi's own finalizer keeps each KafkaTopic until it has dealt with the topic.
    for topic in topics:
        cluster.patch("kafkatopic", topic, kafka, {"metadata": {"finalizers": [STRIMZI]}})

    cluster.delete("agent", "leaver", ns)
    wait_for(lambda: cluster.get("agent", "leaver", ns) is None, what="Agent gone")
    assert not cluster.names("kafkauser", kafka, selector)
    for topic in topics:
        seen = cluster.get("kafkatopic", topic, kafka) or {}
        assert seen["metadata"].get("deletionTimestamp"), topic
        # Detached before it was deleted: Strimzi deletes the KafkaTopic, not the topic.
        assert seen["metadata"]["annotations"]["strimzi.io/managed"] == "false", topic
        cluster.patch("kafkatopic", topic, kafka, {"metadata": {"finalizers": None}})
    wait_for(lambda: not cluster.names("kafkatopic", kafka, selector), what="topics released")
    assert cluster.names("kafkatopic", kafka, "chorus.dev/shared-topic")  # shared ones stay


@pytest.mark.integration
def test_restart_makes_no_duplicates_no_writes_and_keeps_status(
    cluster: Cluster, space: Space, tmp_path: Path
) -> None:
    ns = space.ns
    first = start_operator(cluster, space, tmp_path, name="first")
    try:
        cluster.apply(agent("steady"), ns)
        wait_for(lambda: cluster.get("deployment", "steady", ns), what="Deployment")
        wait_for(lambda: phase(cluster, space, "steady") == "Pending", what="status")
        wait_for(lambda: first.metric("chorus_operator_reconciles_total") >= 1, what="metrics")
    finally:
        assert first.stop() == 0  # SIGTERM is a clean exit
    before = cluster.get("agent", "steady", ns) or {}
    children = {k: cluster.names(k, ns) for k in ("deployment", "configmap", "service")}

    second = start_operator(cluster, space, tmp_path, name="second")
    try:
        wait_for(
            lambda: second.metric("chorus_operator_reconciles_total", kind="Agent") >= 1,
            what="the restarted operator resumed the Agent",
        )
        assert second.metric("chorus_operator_writes_total") == 0
        assert second.metric("chorus_operator_status_writes_total") == 0
    finally:
        second.stop()
    after = cluster.get("agent", "steady", ns) or {}
    assert after["status"] == before["status"]
    assert {k: cluster.names(k, ns) for k in children} == children


@pytest.mark.integration
def test_two_replicas_only_one_acts(cluster: Cluster, space: Space, tmp_path: Path) -> None:
    ns = space.ns
    low = start_operator(cluster, space, tmp_path, name="low", CHORUS_PEERING_PRIORITY="10")
    high = start_operator(cluster, space, tmp_path, name="high", CHORUS_PEERING_PRIORITY="20")
    try:
        peering = wait_for(
            lambda: (cluster.get("kopfpeering", "chorus-operator", ns) or {}).get("status"),
            what="peering keep-alives",
        )
        assert peering
        cluster.apply(agent("solo"), ns)
        wait_for(lambda: cluster.get("deployment", "solo", ns), what="Deployment")
        wait_for(
            lambda: high.metric("chorus_operator_reconciles_total", kind="Agent") >= 1,
            what="the higher priority replica acts",
        )
        assert low.metric("chorus_operator_reconciles_total") == 0
        assert low.healthy()

        # The active replica stops gracefully (it leaves the peering): the other takes over.
        assert high.stop() == 0
        cluster.apply(agent("next"), ns)
        wait_for(lambda: cluster.get("deployment", "next", ns), what="the standby took over")
        assert low.metric("chorus_operator_reconciles_total", kind="Agent") >= 1
    finally:
        high.stop()
        low.stop()


def _container(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["name"])


def _image(deployment: dict[str, Any] | None) -> str:
    return str((deployment or {})["spec"]["template"]["spec"]["containers"][0]["image"])


def _hash(deployment: dict[str, Any] | None) -> str:
    template = (deployment or {})["spec"]["template"]
    return str(template["metadata"]["annotations"]["chorus.dev/config-hash"])


@pytest.mark.integration
def test_a_missing_kafka_namespace_is_waited_for(
    cluster: Cluster, space: Space, tmp_path: Path
) -> None:
    ns = space.ns
    absent = unique("nowhere")
    operator = start_operator(cluster, Space(ns, absent), tmp_path, CHORUS_NAMESPACES=ns)
    try:
        cluster.apply(agent("early"), ns)
        wait_for(
            lambda: (
                condition(cluster, space, "early", "AccessReady")[1] == "NamespaceNotFound"
                or condition(cluster, space, "early", "TopicsReady")[1] == "NamespaceNotFound"
            ),
            what="NamespaceNotFound",
        )
        ready = cluster.condition("agent", "early", ns, "Ready") or {}
        assert ready["status"] == "False" and absent in ready["message"]
        assert operator.healthy()
        cluster.namespace(absent)
        wait_for(
            lambda: cluster.names("kafkatopic", absent, f"chorus.dev/agent={ns}.early"),
            what="topics once the namespace exists",
        )
    finally:
        operator.stop()


@pytest.mark.integration
def test_a_new_agent_changes_no_other_agents_kafka_user(
    cluster: Cluster, space: Space, operator: Operator
) -> None:
    """Any Agent may call any other of its namespace through one prefixed ACL, so an Agent
    arriving rewrites no peer's KafkaUser (with a list of peers, N Agents cost N² ACLs)."""
    ns, kafka = space.ns, space.kafka
    cluster.apply(agent("first"), ns)
    first = f"chorus.dev/agent={ns}.first"
    wait_for(lambda: cluster.names("kafkauser", kafka, first), what="first KafkaUser")
    [user] = cluster.list("kafkauser", kafka, first)
    prefix = {"type": "topic", "name": a2a_prefix(ns), "patternType": "prefix"}
    assert any(
        acl["resource"] == prefix and "Write" in acl["operations"]
        for acl in user["spec"]["authorization"]["acls"]
    )

    cluster.apply(agent("second"), ns)
    second = f"chorus.dev/agent={ns}.second"
    wait_for(lambda: cluster.names("kafkauser", kafka, second), what="second KafkaUser")
    # A spec change makes "first" reconcile after "second" exists: its KafkaUser stays.
    cluster.patch("agent", "first", ns, {"spec": {"instructions": "Answer briefly."}})
    wait_for(
        lambda: (
            ((cluster.get("agent", "first", ns) or {}).get("status") or {}).get(
                "observedGeneration"
            )
            == 2
        ),
        what="first reconciled at generation 2",
    )
    [after] = cluster.list("kafkauser", kafka, first)
    assert after["spec"] == user["spec"]
    assert after["metadata"]["resourceVersion"] == user["metadata"]["resourceVersion"]
