"""The Chorus operator as a pod: the real chart, installed with helm into the one-node cluster,
runs the operator image built here from operator/Dockerfile. The kubelet starts it and its
probes pass; in the cluster, with its ServiceAccount's rights only, it reconciles an Agent
into the children the operator writes (the Deployment, Service and ConfigMap of the agent,
and its KafkaTopics in the Kafka namespace). An Agent whose image cannot run (one without the
runtime's entry point) reports ``WorkloadReady=False`` with the kubelet's reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chorus_operator.status import KUBELET_FAILURES

from tests.services.base import REPO
from tests.services.cluster.node import load_images
from tests.services.helm import Helm
from tests.services.images.build import Built
from tests.services.kube import THIRD_PARTY_CRDS

pytestmark = pytest.mark.cluster

NAMESPACE = "chorus-system"
AGENTS = "demo"
CHART = REPO / "charts" / "chorus-operator"


@pytest.fixture(scope="module")
def built(built_images: Built) -> Built:
    return built_images


@pytest.fixture(scope="module")
def operator(cluster: Any, built: Built, helm: Helm) -> Iterator[dict[str, Any]]:
    """The chart installed (one replica, the image built here, never pulled) and its
    Deployment available; uninstalled afterwards."""
    load_images(cluster, built.archives.values())
    api = cluster.api
    # The upstream operators' CRDs the operator writes (KafkaTopic, KafkaUser, ...).
    for folder in ("strimzi", "flink-operator"):
        api.kubectl("apply", "--server-side", "-f", str(THIRD_PARTY_CRDS / folder))
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}})
    image = built.images["operator"].ref
    repository, _, tag = image.rpartition(":")
    kubeconfig = f"--kubeconfig={api.admin_kubeconfig}"
    helm.run(
        "install", "chorus-operator", str(CHART), kubeconfig,
        "--namespace", NAMESPACE, "--create-namespace",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--set", "replicas=1",
        "--set", "podDisruptionBudget.enabled=false",
        "--set", f"agent.image={built.images['agent'].ref}",
        # re-reconcile every 5 s: an agent's pod status is read on the next pass
        "--set", "reconcile.recheckInterval=5",
        timeout=180,
    )  # fmt: skip
    try:
        api.kubectl(
            "-n", NAMESPACE, "rollout", "status", "deployment/chorus-operator", "--timeout=150s",
            timeout=180,
        )  # fmt: skip
        yield {"image": image}
    finally:
        helm.run("uninstall", "chorus-operator", kubeconfig, "--namespace", NAMESPACE, check=False)


def apply_agent(api: Any, name: str, **spec: Any) -> None:
    """A scripted greeter Agent called ``name`` in :data:`AGENTS` (its namespace made first),
    with ``spec``'s fields besides."""
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AGENTS}})
    api.apply(
        {
            "apiVersion": "chorus.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name, "namespace": AGENTS},
            "spec": {
                "instructions": "Greet whoever writes to you, by name.",
                "model": {"provider": "scripted"},
                **spec,
            },
        }
    )


def pods(api: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    found = api.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(found)["items"]
    return items


def test_the_operator_pod_runs_the_image_built_here_and_passes_its_probes(
    cluster: Any, operator: dict[str, Any]
) -> None:
    (pod,) = pods(cluster.api, NAMESPACE, "app.kubernetes.io/name=chorus-operator")
    (container,) = pod["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (operator["image"], "Never")
    assert container["readinessProbe"] or container["livenessProbe"]
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True"  # the kubelet's own view: probes passed
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and status["restartCount"] == 0


def test_the_operator_in_the_cluster_reconciles_an_agent_into_its_children(
    cluster: Any, operator: dict[str, Any]
) -> None:
    from tests.operator.harness import wait_for

    api = cluster.api
    apply_agent(api, "greeter")

    def children() -> bool:
        made = [
            api.kubectl("-n", AGENTS, "get", kind, "greeter", check=False).returncode == 0
            for kind in ("deployment", "service", "configmap")
        ]
        return all(made)

    wait_for(children, what="the agent's Deployment, Service and ConfigMap", timeout=120)
    topics = api.kubectl("-n", "kafka", "get", "kafkatopics", "-o", "name").stdout.split()
    assert any("greeter" in t for t in topics), topics
    agent = json.loads(api.kubectl("-n", AGENTS, "get", "agent", "greeter", "-o", "json").stdout)
    assert agent["status"]["conditions"], agent["status"]


def test_an_agent_whose_image_cannot_run_reports_the_kubelets_reason(
    cluster: Any, operator: dict[str, Any]
) -> None:
    from tests.operator.harness import wait_for

    api = cluster.api
    # the pause image: no `chorus` in it, so the container cannot start
    apply_agent(api, "broken", image=cluster.images["pause"])

    def workload() -> dict[str, Any] | None:
        found = api.kubectl("-n", AGENTS, "get", "agent", "broken", "-o", "json", check=False)
        if found.returncode != 0:
            return None
        conditions = json.loads(found.stdout).get("status", {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "WorkloadReady"), None)
        return ready if ready and ready["reason"] in KUBELET_FAILURES else None

    condition = wait_for(workload, what="WorkloadReady with the kubelet's reason", timeout=150)
    assert condition["status"] == "False"
    assert "container agent" in condition["message"], condition
    (pod,) = pods(api, AGENTS, "app.kubernetes.io/instance=broken")
    waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting") or {}
    assert waiting.get("reason") in KUBELET_FAILURES  # the kubelet's own word, as reported
