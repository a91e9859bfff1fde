"""The test kube-apiserver: it serves the pinned release, enforces RBAC, and validates
Strimzi and Flink resources against the upstream CRDs as a production cluster would."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.services.kube import MODULE, KubeCluster, KubectlError, crd_files

pytestmark = pytest.mark.integration

RESTRICTED_USER = "chorus-restricted"


def eventually(check: Callable[[], bool], *, what: str, timeout: float = 15.0) -> None:
    """RBAC and discovery changes reach the apiserver's caches within moments, not at once."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout:.0f}s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def namespace(kube: KubeCluster) -> Iterator[str]:
    name = f"harness-{secrets.token_hex(3)}"
    kube.kubectl("create", "namespace", name)
    yield name
    # No namespace controller runs here: the namespace stays Terminating, which is harmless.
    kube.kubectl("delete", "namespace", name, "--wait=false")


# --- the server ------------------------------------------------------------------------


def test_server_and_kubectl_are_the_pinned_release(kube: KubeCluster) -> None:
    pinned = re.search(
        r"^\s*k8s\.io/kubernetes (v[\d.]+)\s*$", (MODULE / "go.mod").read_text(), re.MULTILINE
    )
    assert pinned is not None
    versions = json.loads(kube.kubectl("version", "--output=json").stdout)
    assert versions["serverVersion"]["gitVersion"] == pinned.group(1)
    assert versions["clientVersion"]["gitVersion"] == pinned.group(1)
    assert kube.kubectl("get", "--raw=/readyz").stdout.strip() == "ok"
    server = kube.kubectl(
        "config", "view", "--minify", "--output=jsonpath={.clusters[0].cluster.server}"
    ).stdout
    assert server == kube.server


# --- RBAC ------------------------------------------------------------------------------


def can(kube: KubeCluster, *args: str) -> bool:
    """Whether the restricted user may run ``kubectl get <args>``."""
    result = kube.kubectl("get", *args, "--output=name", restricted=True, check=False)
    if result.returncode != 0:
        assert "Forbidden" in result.stderr, result.stderr
        assert f'User "{RESTRICTED_USER}" cannot list' in result.stderr, result.stderr
    return result.returncode == 0


def test_restricted_user_can_do_only_what_it_is_bound_to(kube: KubeCluster, namespace: str) -> None:
    refused = kube.kubectl("get", "namespaces", restricted=True, check=False)
    assert refused.returncode != 0
    assert "(Forbidden)" in refused.stderr
    assert f'User "{RESTRICTED_USER}" cannot list resource "namespaces"' in refused.stderr

    role = f"{namespace}-reader"
    subject = {"kind": "User", "name": RESTRICTED_USER, "apiGroup": "rbac.authorization.k8s.io"}
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": [
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": role},
                "subjects": [subject],
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "topic-reader", "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": ["kafka.strimzi.io"],
                        "resources": ["kafkatopics"],
                        "verbs": ["get", "list"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "topic-reader", "namespace": namespace},
                "subjects": [subject],
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "topic-reader",
                },
            },
        ]
    )
    try:
        eventually(lambda: can(kube, "namespaces"), what="restricted user lists namespaces")
        listed = kube.kubectl("get", "namespaces", "--output=name", restricted=True).stdout
        assert f"namespace/{namespace}" in listed.split()
        eventually(
            lambda: can(kube, "kafkatopics", f"--namespace={namespace}"),
            what=f"restricted user lists kafkatopics in {namespace}",
        )
        # Bound to exactly that: not other resources, not other namespaces.
        assert not can(kube, "secrets", f"--namespace={namespace}")
        assert not can(kube, "kafkatopics", "--namespace=default")
        assert not can(kube, "configmaps", "--all-namespaces")
    finally:
        kube.kubectl(
            "delete", f"clusterrolebinding/{role}", f"clusterrole/{role}", "--ignore-not-found"
        )
        kube.kubectl(
            "delete",
            "--namespace",
            namespace,
            "rolebinding/topic-reader",
            "role/topic-reader",
            "--ignore-not-found",
        )
    eventually(lambda: not can(kube, "namespaces"), what="unbound restricted user is refused")


# --- upstream CRDs ---------------------------------------------------------------------


def test_every_crd_is_established(kube: KubeCluster) -> None:
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in crd_files()]
    assert {
        "kafkas.kafka.strimzi.io",
        "kafkanodepools.kafka.strimzi.io",
        "flinkdeployments.flink.apache.org",
    } <= set(names)
    established = kube.kubectl(
        "get",
        "customresourcedefinitions",
        *names,
        "--output=jsonpath={range .items[*]}{.metadata.name}="
        '{.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
    ).stdout
    assert sorted(established.split()) == sorted(f"{name}=True" for name in names)


CLUSTER = "events"
TOPIC = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaTopic",
    "metadata": {"name": "trading.signals", "labels": {"strimzi.io/cluster": CLUSTER}},
    "spec": {
        "partitions": 6,
        "replicas": 1,
        "config": {"retention.ms": 604800000, "cleanup.policy": "delete"},
    },
}
USER = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaUser",
    "metadata": {"name": "risk-assessor", "labels": {"strimzi.io/cluster": CLUSTER}},
    "spec": {
        "authentication": {"type": "tls"},
        "authorization": {
            "type": "simple",
            "acls": [
                {
                    "resource": {
                        "type": "topic",
                        "name": "trading.signals",
                        "patternType": "literal",
                    },
                    "operations": ["Read", "Describe"],
                },
                {
                    "resource": {"type": "group", "name": "risk-assessor", "patternType": "prefix"},
                    "operations": ["Read"],
                },
                {
                    "resource": {"type": "topic", "name": "trading.decisions"},
                    "operations": ["Write", "Describe"],
                    "type": "allow",
                },
            ],
        },
    },
}
KAFKA = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "Kafka",
    "metadata": {"name": CLUSTER},
    "spec": {
        "kafka": {
            "version": "4.2.0",
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal", "tls": False},
                {
                    "name": "tls",
                    "port": 9093,
                    "type": "internal",
                    "tls": True,
                    "authentication": {"type": "tls"},
                },
            ],
            "authorization": {"type": "simple"},
            "config": {"offsets.topic.replication.factor": 1, "min.insync.replicas": 1},
        },
        "entityOperator": {"topicOperator": {}, "userOperator": {}},
    },
}
NODE_POOL = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaNodePool",
    "metadata": {"name": "dual-role", "labels": {"strimzi.io/cluster": CLUSTER}},
    "spec": {
        "replicas": 1,
        "roles": ["controller", "broker"],
        "storage": {
            "type": "jbod",
            "volumes": [
                {
                    "id": 0,
                    "type": "persistent-claim",
                    "size": "10Gi",
                    "kraftMetadata": "shared",
                    "deleteClaim": False,
                },
            ],
        },
    },
}
FLINK = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkDeployment",
    "metadata": {"name": "signal-detector"},
    "spec": {
        "image": "flink:2.2",
        "flinkVersion": "v2_2",
        "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
        "serviceAccount": "flink",
        "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
        "job": {
            "jarURI": "local:///opt/flink/opt/flink-python-2.2.0.jar",
            "entryClass": "org.apache.flink.client.python.PythonDriver",
            "args": ["-pym", "chorus_flink.trading.signals"],
            "parallelism": 2,
            "upgradeMode": "savepoint",
        },
    },
}


def in_namespace(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    placed = copy.deepcopy(manifest)
    placed["metadata"]["namespace"] = namespace
    return placed


def fetch(kube: KubeCluster, manifest: dict[str, Any]) -> dict[str, Any]:
    meta = manifest["metadata"]
    found: dict[str, Any] = json.loads(
        kube.kubectl(
            "get",
            f"{manifest['kind']}.{manifest['apiVersion'].split('/')[0]}/{meta['name']}",
            f"--namespace={meta['namespace']}",
            "--output=json",
        ).stdout
    )
    return found


@pytest.mark.parametrize(
    "manifests",
    [[TOPIC], [USER], [KAFKA, NODE_POOL], [FLINK]],
    ids=["KafkaTopic", "KafkaUser", "Kafka+KafkaNodePool", "FlinkDeployment"],
)
def test_upstream_resource_is_accepted(
    kube: KubeCluster, namespace: str, manifests: list[dict[str, Any]]
) -> None:
    placed = [in_namespace(manifest, namespace) for manifest in manifests]
    kube.apply(placed)
    for manifest in placed:
        stored = fetch(kube, manifest)
        assert stored["apiVersion"] == manifest["apiVersion"]
        # Nothing was pruned or defaulted away: the schema knows every field we set.
        assert stored["spec"] == manifest["spec"]


def broken(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``manifest`` with the value at a dotted path (list indexes as numbers) set."""
    copied = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node: Any = copied
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    copied["metadata"]["name"] += "-broken"
    return copied


MALFORMED = [
    pytest.param(
        broken(TOPIC, "spec.partitions", 0), "spec.partitions", id="KafkaTopic-partitions"
    ),
    pytest.param(
        broken(TOPIC, "spec.partitionz", 3),
        ".spec.partitionz: field not declared",
        id="KafkaTopic-typo",
    ),
    pytest.param(
        broken(USER, "spec.authorization.acls.0.operations", ["Explode"]),
        "spec.authorization.acls[0].operations[0]",
        id="KafkaUser-acl-operation",
    ),
    pytest.param(
        broken(KAFKA, "spec.kafka.listeners.0.type", "carrier-pigeon"),
        "spec.kafka.listeners[0].type",
        id="Kafka-listener-type",
    ),
    pytest.param(
        broken(NODE_POOL, "spec.roles", ["chef"]), "spec.roles[0]", id="KafkaNodePool-role"
    ),
    pytest.param(
        broken(FLINK, "spec.flinkVersion", "v0_9"),
        "spec.flinkVersion",
        id="FlinkDeployment-version",
    ),
]


@pytest.mark.parametrize(("manifest", "field"), MALFORMED)
def test_malformed_upstream_resource_is_refused(
    kube: KubeCluster, namespace: str, manifest: dict[str, Any], field: str
) -> None:
    placed = in_namespace(manifest, namespace)
    with pytest.raises(KubectlError) as refused:
        kube.apply(placed)
    assert field in refused.value.stderr
    missing = kube.kubectl(
        "get",
        f"{placed['kind']}/{placed['metadata']['name']}",
        f"--namespace={namespace}",
        check=False,
    )
    assert "NotFound" in missing.stderr
