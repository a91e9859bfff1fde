"""The operator runs with no more rights than the Helm chart grants it.

The chart is rendered with helm (namespace scope, so the grants stay inside this test's
namespaces on the shared apiserver), its Roles are bound to the restricted test user, and
the operator runs with that user's kubeconfig through an Agent's whole life.

The chart's one cluster-level grant (reading CRDs and namespaces: kopf lists namespaces
even when it watches named ones) is bound too, for the test's duration only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.conftest import Space
from tests.operator.harness import Cluster, Operator, unique, wait_for
from tests.services.base import REPO
from tests.services.helm import Helm

CHART = REPO / "charts" / "chorus-operator"
SUBJECT = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "chorus-restricted"}


def render(helm: Helm, values: dict[str, Any]) -> list[dict[str, Any]]:
    result = helm.run(
        "template", "chorus-operator", str(CHART), "--namespace", "chorus-system",
        "--values", "-", input=json.dumps(values),
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.integration
def test_operator_runs_with_the_charts_namespaced_rbac(
    cluster: Cluster, space: Space, helm: Helm, tmp_path: Path
) -> None:
    ns, kafka = space.ns, space.kafka
    peering = unique("peering")
    objects = render(
        helm,
        {
            "rbac": {"scope": "namespace"},
            "watchNamespaces": [ns],
            "kafka": {"namespace": kafka},
            "peering": {"name": peering},
        },
    )
    roles = [o for o in objects if o["kind"] == "Role"]
    assert {r["metadata"]["namespace"] for r in roles} == {ns, kafka}
    for role in roles:
        role["metadata"]["name"] = unique("chorus-operator")
        cluster.kube.apply(role)
        cluster.kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": role["metadata"] | {"labels": {}},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": role["metadata"]["name"],
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": "chorus-restricted",
                    }
                ],
            }
        )
    for peer in (o for o in objects if o["kind"] == "KopfPeering"):
        cluster.kube.apply(peer)
    (reader,) = (o for o in objects if o["kind"] == "ClusterRole")
    reader["metadata"]["name"] = unique("chorus-operator-read")
    cluster.kube.apply(reader)
    cluster.kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": reader["metadata"]["name"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": reader["metadata"]["name"],
            },
            "subjects": [SUBJECT],
        }
    )

    operator = Operator(
        kubeconfig=cluster.kube.restricted_kubeconfig,
        namespaces=(ns,),
        kafka_namespace=kafka,
        log=tmp_path / "restricted.log",
        env={"CHORUS_KAFKA_AUTHENTICATION": "scram-sha-512", "CHORUS_PEERING_NAME": peering},
    ).start()
    try:
        cluster.apply(
            {
                "apiVersion": "chorus.dev/v1alpha1",
                "kind": "Agent",
                "metadata": {"name": "limited"},
                "spec": {"instructions": "Answer.", "model": {"provider": "scripted"}},
            },
            ns,
        )
        wait_for(lambda: cluster.get("deployment", "limited", ns), what="Deployment")
        selector = f"chorus.dev/agent={ns}.limited"
        wait_for(lambda: cluster.names("kafkatopic", kafka, selector), what="KafkaTopics")
        wait_for(lambda: cluster.names("kafkauser", kafka, selector), what="KafkaUser")
        wait_for(
            lambda: ((cluster.get("agent", "limited", ns) or {}).get("status") or {}).get("phase"),
            what="status written",
        )
        cluster.delete("agent", "limited", ns)
        wait_for(lambda: cluster.get("agent", "limited", ns) is None, what="finalizer done")
        assert not cluster.names("kafkatopic", kafka, selector)
        log = operator.log.read_text()
        # A 403 as a number of its own: a timestamp's digits (…:44.264037Z) are no refusal.
        assert not re.search(r"\b403\b", log) and "Forbidden" not in log, operator.tail()
    finally:
        operator.stop()
        for kind in ("clusterrolebinding", "clusterrole"):
            cluster.kube.kubectl("delete", kind, reader["metadata"]["name"], check=False)
