"""Several Agents at once: shared publish topics, and a no-op change that writes nothing.

The no-op is checked from outside the operator (the resourceVersion of every child and of
every Agent's status) as well as by its own write counters.
"""

from __future__ import annotations

import pytest

from tests.operator.conftest import Space
from tests.operator.harness import (
    Cluster,
    Operator,
    deployment_available,
    flink_running,
    strimzi_ready,
    wait_for,
)
from tests.operator.test_lifecycle import SIGNALS, agent

SHARED = "team.plans"
AGENTS = ("planner-a", "planner-b", "planner-c")
CHILD_KINDS = ("deployment", "configmap", "service", "serviceaccount", "networkpolicy")


def play_controllers(cluster: Cluster, space: Space) -> None:
    """Reports every child Ready the way Strimzi, Flink and Kubernetes would."""
    for kind in ("kafkatopic", "kafkauser"):
        for obj in cluster.list(kind, space.kafka):
            status = obj.get("status") or {}
            if status.get("observedGeneration") != obj["metadata"].get("generation"):
                strimzi_ready(cluster, kind, obj["metadata"]["name"], space.kafka)
    for obj in cluster.list("deployment", space.ns):
        if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            deployment_available(cluster, obj["metadata"]["name"], space.ns)
    for obj in cluster.list("flinkdeployment", space.ns):
        if ((obj.get("status") or {}).get("jobStatus") or {}).get("state") != "RUNNING":
            flink_running(cluster, obj["metadata"]["name"], space.ns)


def all_ready(cluster: Cluster, space: Space) -> bool:
    play_controllers(cluster, space)
    ready = {name: cluster.condition("agent", name, space.ns, "Ready") or {} for name in AGENTS}
    if all(c.get("status") == "True" for c in ready.values()):
        return True
    # Falsy, but shown by wait_for when it gives up.
    raise AssertionError({n: c.get("message") for n, c in ready.items()})


def versions(cluster: Cluster, space: Space) -> dict[str, str]:
    """The resourceVersion of every child and every Agent: any write changes one."""
    found = {}
    for kind, namespace in [
        *((k, space.ns) for k in (*CHILD_KINDS, "flinkdeployment", "agent")),
        *((k, space.kafka) for k in ("kafkatopic", "kafkauser", "role", "rolebinding")),
    ]:
        for obj in cluster.list(kind, namespace):
            meta = obj["metadata"]
            found[f"{kind}/{meta['name']}"] = meta["resourceVersion"]
    return found


@pytest.mark.integration
def test_shared_publish_topic_and_a_no_op_change_writes_nothing(
    cluster: Cluster, space: Space, operator: Operator
) -> None:
    ns, kafka = space.ns, space.kafka
    for name in AGENTS:
        spec = {"publish": [{"topic": SHARED}], "streams": [{"name": "s", "job": SIGNALS}]}
        cluster.apply(agent(name, **spec), ns)
    wait_for(lambda: all_ready(cluster, space), what="every Agent Ready", timeout=120)

    # One KafkaTopic for the topic all three publish: shared, owned by none of them.
    topic = cluster.get("kafkatopic", SHARED, kafka) or {}
    assert topic["metadata"]["labels"]["chorus.dev/shared-topic"] == "output"
    assert "chorus.dev/agent" not in topic["metadata"]["labels"]
    assert not topic["metadata"].get("ownerReferences")

    # Let the last status patches' follow-up reconciles settle, then change nothing.
    wait_for(
        lambda: (v := versions(cluster, space)) == versions(cluster, space) and v,
        what="a quiet cluster",
    )
    before = versions(cluster, space)
    writes = operator.metric("chorus_operator_writes_total")
    status_writes = operator.metric("chorus_operator_status_writes_total")
    reconciles = operator.metric("chorus_operator_reconciles_total", kind="Agent")
    patched = {}
    for name in AGENTS:
        cluster.patch("agent", name, ns, {"metadata": {"annotations": {"example.com/x": "1"}}})
        patched[name] = (cluster.get("agent", name, ns) or {})["metadata"]["resourceVersion"]
    wait_for(
        lambda: (
            operator.metric("chorus_operator_reconciles_total", kind="Agent")
            >= reconciles + len(AGENTS)
        ),
        what="every Agent reconciled after the no-op change",
    )
    assert operator.metric("chorus_operator_writes_total") == writes
    assert operator.metric("chorus_operator_status_writes_total") == status_writes
    after = versions(cluster, space)
    changed = {k for k in before if after.get(k) != before[k] and not k.startswith("agent/")}
    assert not changed, f"written on a no-op: {sorted(changed)}"
    for name in AGENTS:
        body = cluster.get("agent", name, ns) or {}
        assert body["status"]["phase"] == "Ready"
        # Not even kopf's last-handled state: it is kept in memory, not in an annotation.
        assert body["metadata"]["resourceVersion"] == patched[name], name
        assert not [a for a in body["metadata"]["annotations"] if "last-handled" in a], name

    # Deleting one publisher leaves the shared topic to the others.
    cluster.delete("agent", AGENTS[0], ns, wait=True)
    assert cluster.get("kafkatopic", SHARED, kafka) is not None
