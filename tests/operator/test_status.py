"""Status derived from children's own status: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chorus_operator.status import (
    Condition,
    agent_conditions,
    blocked_conditions,
    child_health,
    merge_conditions,
    phase,
    pod_trouble,
    ready_condition,
    status_changed,
    transitions,
    with_ready,
)


def strimzi(kind: str, ready: str | None, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "Bad", "message": "x"}]
    return {"kind": kind, "metadata": {"name": "t", "generation": generation}, "status": status}


def deployment(
    available: int, *, replicas: int = 1, generation: int = 2, observed: int = 2
) -> dict[str, Any]:
    return {
        "metadata": {"name": "d", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": replicas,
            "availableReplicas": available,
        },
    }


@pytest.mark.unit
@pytest.mark.parametrize(
    ("obj", "ready", "reason"),
    [
        (strimzi("KafkaTopic", "True"), True, "Ready"),
        (strimzi("KafkaTopic", "False"), False, "Bad"),
        (strimzi("KafkaTopic", None), None, "Pending"),
        (strimzi("KafkaTopic", "True", generation=2, observed=1), None, "Pending"),
        # A user Ready at its previous generation works (its ACLs are being extended).
        (strimzi("KafkaUser", "True", generation=2, observed=1), True, "Updating"),
        (strimzi("KafkaUser", None, generation=2, observed=1), None, "Pending"),
    ],
)
def test_strimzi_children_report_their_ready_condition(
    obj: dict[str, Any], ready: bool | None, reason: str
) -> None:
    health = child_health(obj, obj["kind"], "t")
    assert (health.ready, health.reason) == (ready, reason)


@pytest.mark.unit
def test_deployment_health_follows_rollout_and_availability() -> None:
    assert child_health(deployment(1), "Deployment", "d").ready is True
    assert child_health(deployment(0), "Deployment", "d").reason == "Unavailable"
    assert child_health(deployment(1, observed=1), "Deployment", "d").reason == "RollingOut"
    assert child_health(deployment(0, replicas=0), "Deployment", "d").reason == "ScaledToZero"
    assert child_health({"metadata": {}, "spec": {}}, "Deployment", "d").ready is None
    stalled = deployment(0)
    stalled["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    assert child_health(stalled, "Deployment", "d").failed


@pytest.mark.unit
@pytest.mark.parametrize(
    ("status", "ready", "reason", "failed"),
    [
        ({"jobStatus": {"state": "RUNNING"}, "lifecycleState": "STABLE"}, True, "Running", False),
        ({"jobStatus": {"state": "FAILED"}, "lifecycleState": "STABLE"}, False, "JobFailed", True),
        (
            {"jobStatus": {"state": "CREATED"}, "lifecycleState": "DEPLOYED"},
            False,
            "JobNotRunning",
            False,
        ),
        ({}, None, "Pending", False),
    ],
)
def test_flink_deployment_health(
    status: dict[str, Any], ready: bool | None, reason: str, failed: bool
) -> None:
    health = child_health({"metadata": {"name": "f"}, "status": status}, "FlinkDeployment", "f")
    assert (health.ready, health.reason, health.failed) == (ready, reason, failed)


@pytest.mark.unit
def test_a_missing_child_is_not_ready() -> None:
    health = child_health(None, "Deployment", "agent")
    assert (health.ready, health.reason) == (False, "Missing")
    assert "Deployment agent" in health.message


@pytest.mark.unit
def test_agent_conditions_group_children_by_aspect() -> None:
    got = {
        c.type: (c.status, c.reason)
        for c in agent_conditions(
            [
                ("KafkaTopic", "a", strimzi("KafkaTopic", "True")),
                ("KafkaTopic", "b", strimzi("KafkaTopic", None)),
                ("Deployment", "d", deployment(1)),
                ("ConfigMap", "c", {"metadata": {}}),
            ]
        )
    }
    assert got == {
        "TopicsReady": ("Unknown", "Pending"),
        "AccessReady": ("True", "NoKafkaUser"),
        "WorkloadReady": ("True", "Ready"),
        "StreamsReady": ("True", "NoStreams"),
    }


def crashing_pod(reason: str = "CrashLoopBackOff") -> dict[str, Any]:
    """An agent pod as the kubelet reports a container that keeps failing."""
    return {
        "metadata": {"name": "greeter-7d9-abc"},
        "status": {
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "agent",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": reason, "message": "back-off 40s"}},
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 127}},
                }
            ],
        },
    }


@pytest.mark.unit
def test_an_unavailable_workload_says_the_kubelets_reason() -> None:
    def workload(available: int, pods: list[dict[str, Any]]) -> tuple[str, str, str]:
        by_type = {
            c.type: c for c in agent_conditions([("Deployment", "d", deployment(available))], pods)
        }
        found = by_type["WorkloadReady"]
        return found.status, found.reason, found.message

    status, reason, message = workload(0, [crashing_pod()])
    assert (status, reason) == ("False", "CrashLoopBackOff")
    assert "container agent: CrashLoopBackOff: back-off 40s" in message
    assert "last run: Error, exit code 127" in message
    assert workload(0, [crashing_pod("ErrImageNeverPull")])[1] == "ErrImageNeverPull"
    # a pod the scheduler cannot place
    unplaced = {"metadata": {"name": "p"}, "status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available"}]}}  # fmt: skip
    assert workload(0, [unplaced])[1:] == ("Unschedulable", "pod p: 0/1 nodes are available")
    # no reason from the pods (still starting): the Deployment's own word
    assert workload(0, [])[1] == "Unavailable"
    starting = crashing_pod("ContainerCreating")
    assert workload(0, [starting])[1] == "Unavailable"
    # an available workload stays Ready whatever an old pod says
    assert workload(1, [crashing_pod()])[:2] == ("True", "Ready")
    assert pod_trouble([]) is None


@pytest.mark.unit
def test_ready_is_the_first_condition_that_is_not_true() -> None:
    conditions = [
        Condition("ToolsResolved", "True", "Resolved", "ok"),
        Condition("TopicsReady", "False", "KafkaNotReady", "Kafka k/chorus: not ready"),
    ]
    ready = ready_condition(conditions, "agent ns/a")
    assert (ready.status, ready.reason) == ("False", "KafkaNotReady")
    assert ready.message.startswith("TopicsReady: ")
    assert ready_condition(conditions[:1], "agent ns/a").status == "True"


@pytest.mark.unit
def test_phase() -> None:
    ready = [Condition("Ready", "True", "Ready", "")]
    not_ready = [Condition("Ready", "False", "X", ""), Condition("WorkloadReady", "False", "X", "")]
    running = [Condition("Ready", "False", "X", ""), Condition("WorkloadReady", "True", "R", "")]
    assert phase(ready, failed=False, previous=None) == "Ready"
    assert phase(ready, failed=True, previous=None) == "Failed"
    assert phase(not_ready, failed=False, previous=None) == "Pending"
    assert phase(not_ready, failed=False, previous="Ready") == "Degraded"
    assert phase(running, failed=False, previous="Pending") == "Degraded"


@pytest.mark.unit
def test_blocked_conditions_name_the_refusal_and_block_the_rest() -> None:
    got = {
        c.type: (c.status, c.reason)
        for c in blocked_conditions("StreamsReady", "UnknownStreamJob", "m")
    }
    assert got["StreamsReady"] == ("False", "UnknownStreamJob")
    assert got["ToolsResolved"] == ("Unknown", "Blocked")
    assert len(got) == 5


@pytest.mark.unit
def test_transition_time_moves_only_when_status_changes() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = datetime(2026, 1, 2, tzinfo=UTC)
    first = merge_conditions([Condition("Ready", "False", "A", "m")], [], generation=3, now=t0)
    same = merge_conditions([Condition("Ready", "False", "B", "n")], first, generation=3, now=t1)
    flipped = merge_conditions(
        [Condition("Ready", "True", "Ready", "")], same, generation=4, now=t1
    )
    assert first[0]["lastTransitionTime"] == same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    assert flipped[0]["observedGeneration"] == 4
    assert [t.type for t in transitions(same, flipped)] == ["Ready"]
    assert transitions(first, same) == []
    assert transitions(first, same) == []
    bad = transitions(flipped, same)[0]
    assert bad.bad and (bad.old, bad.new) == ("True", "False")


@pytest.mark.unit
def test_an_unchanged_status_is_not_written() -> None:
    old = {"phase": "Ready", "observedGeneration": 2, "conditions": [{"type": "Ready"}], "extra": 1}
    assert not status_changed(old, {"phase": "Ready", "observedGeneration": 2})
    assert status_changed(old, {"phase": "Degraded"})
    assert status_changed(None, {"phase": "Pending"})


@pytest.mark.unit
def test_with_ready_leads_with_one_ready_condition() -> None:
    refused = [Condition("Ready", "False", "NamespaceMissing", "m")]
    assert [c.type for c in with_ready(refused, "x")] == ["Ready"]
    derived = with_ready([Condition("TopicsReady", "True", "Ready", "")], "agent a/b")
    assert [(c.type, c.status) for c in derived] == [("Ready", "True"), ("TopicsReady", "True")]
