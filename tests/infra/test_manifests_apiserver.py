"""Every Kubernetes object the Pulumi program declares itself, sent to a real kube-apiserver
with the upstream Strimzi CRDs (server-side apply, strict field validation, dry run): the
apiserver accepts each one, and refuses deliberately broken ones with the field at fault.

The objects are the pure builders' (``manifests.declared_objects``); ``test_program`` proves
they are exactly what the program hands to Pulumi. Namespaces are created for real, under a
per-run prefix so they cannot collide with other tests; everything else is a dry run.

Argo CD's CRDs are not part of the test cluster, so the ApplicationSet is checked against a
trimmed copy of the upstream CRD (``crds/applicationsets.argoproj.io.yaml``; its header says
what was left out): the fields the program sets, with upstream's types and required lists.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chorus_infra.manifests import Manifest, declared_objects

from tests.infra.stacks import STACKS, stack_config
from tests.services.kube import FIELD_MANAGER, KubeCluster, KubectlError

pytestmark = pytest.mark.integration

TRIMMED_CRD = Path(__file__).parent / "crds" / "applicationsets.argoproj.io.yaml"
DRY_RUN = "serverside-applied (server dry run)"


@pytest.fixture(scope="module")
def application_set_crd(kube: KubeCluster) -> None:
    kube.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "-f",
        str(TRIMMED_CRD),
    )
    kube.kubectl(
        "wait", "--for=condition=established", "--timeout=60s", "crd/applicationsets.argoproj.io"
    )


def isolate(objects: list[Manifest], prefix: str) -> list[Manifest]:
    """The same objects with every namespace renamed ``<prefix>-<name>``."""
    found = []
    for original in objects:
        item = copy.deepcopy(original)
        metadata = item["metadata"]
        if item["kind"] == "Namespace":
            metadata["name"] = f"{prefix}-{metadata['name']}"
        if "namespace" in metadata:
            metadata["namespace"] = f"{prefix}-{metadata['namespace']}"
        for subject in item.get("subjects", []):
            subject["namespace"] = f"{prefix}-{subject['namespace']}"
        found.append(item)
    return found


@pytest.fixture(scope="module")
def stacks(kube: KubeCluster, application_set_crd: None) -> Iterator[dict[str, list[Manifest]]]:
    """Each stack's objects, renamed into fresh namespaces that now exist in the cluster."""
    run = secrets.token_hex(3)
    found = {}
    for stack in STACKS:
        objects = isolate(declared_objects(stack_config(stack)), f"infra-{run}-{stack}")
        namespaces = [item for item in objects if item["kind"] == "Namespace"]
        kube.apply(namespaces)
        found[stack] = objects
    yield found
    # No namespace controller runs here: deleted namespaces stay Terminating, which is harmless.
    for objects in found.values():
        for item in objects:
            if item["kind"] == "Namespace":
                kube.kubectl(
                    "delete", "namespace", item["metadata"]["name"], "--wait=false", check=False
                )


def dry_run_lines(result: str) -> list[str]:
    return [line for line in result.splitlines() if line.endswith(DRY_RUN)]


@pytest.mark.parametrize("stack", STACKS)
def test_apiserver_accepts_every_declared_object(
    kube: KubeCluster, stacks: dict[str, list[Manifest]], stack: str
) -> None:
    objects = [item for item in stacks[stack] if item["kind"] != "Namespace"]
    kinds = {item["kind"] for item in objects}
    assert {"Kafka", "KafkaNodePool", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    assert ("ApplicationSet" in kinds) == (stack == "prod")
    result = kube.apply(objects, dry_run=True)
    accepted = dry_run_lines(result.stdout)
    assert len(accepted) == len(objects), result.stdout
    for item in objects:
        name = item["metadata"]["name"]
        assert any(
            line.split()[0].endswith(f"/{name}")
            and line.split()[0].startswith(item["kind"].lower())
            for line in accepted
        ), f"{item['kind']} {name}: {result.stdout}"
    # A dry run leaves nothing behind.
    namespace = next(item["metadata"]["namespace"] for item in objects if item["kind"] == "Kafka")
    listed = kube.kubectl(
        "get",
        "kafkas.kafka.strimzi.io,kafkanodepools.kafka.strimzi.io",
        "-n",
        namespace,
        "-o",
        "name",
    )
    assert listed.stdout.strip() == ""


def test_namespaces_were_created_with_their_labels(
    kube: KubeCluster, stacks: dict[str, list[Manifest]]
) -> None:
    for objects in stacks.values():
        for item in objects:
            if item["kind"] != "Namespace":
                continue
            name = item["metadata"]["name"]
            labels = kube.kubectl(
                "get",
                "namespace",
                name,
                "-o",
                "jsonpath={.metadata.labels.app\\.kubernetes\\.io/part-of}",
            )
            assert labels.stdout == "chorus", name


# --- deliberately wrong objects are refused ----------------------------------------------

Breakage = Callable[[Manifest], None]


def _kafka_listener_name(item: Manifest) -> None:
    item["spec"]["kafka"]["listeners"][0]["name"] = "plain_text"


def _kafka_listener_port_text(item: Manifest) -> None:
    item["spec"]["kafka"]["listeners"][0]["port"] = "9093"


def _kafka_unknown_field(item: Manifest) -> None:
    item["spec"]["kafka"]["listenrs"] = item["spec"]["kafka"].pop("listeners")


def _kafka_rack_without_key(item: Manifest) -> None:
    item["spec"]["kafka"]["rack"] = {"type": "topology-label", "topologyKey": ""}


def _pool_storage_type(item: Manifest) -> None:
    item["spec"]["storage"]["type"] = "ssd"


def _pool_without_roles(item: Manifest) -> None:
    del item["spec"]["roles"]


def _appset_without_project(item: Manifest) -> None:
    del item["spec"]["template"]["spec"]["project"]


def _appset_source_typo(item: Manifest) -> None:
    source = item["spec"]["template"]["spec"]["source"]
    source["repoUrl"] = source.pop("repoURL")


def _binding_without_role(item: Manifest) -> None:
    del item["roleRef"]


WRONG: dict[str, tuple[str, Breakage, list[str]]] = {
    "listener name Strimzi refuses": (
        "Kafka",
        _kafka_listener_name,
        ["spec.kafka.listeners[0].name", "^[a-z0-9]{1,11}$"],
    ),
    "listener port as text": (
        "Kafka",
        _kafka_listener_port_text,
        ["spec.kafka.listeners[0].port", "expected numeric"],
    ),
    "unknown Kafka field": (
        "Kafka",
        _kafka_unknown_field,
        [".spec.kafka.listenrs: field not declared in schema"],
    ),
    "rack without a topology key (CEL rule)": (
        "Kafka",
        _kafka_rack_without_key,
        ["spec.kafka.rack", "topologyKey property is required"],
    ),
    "node pool storage type": (
        "KafkaNodePool",
        _pool_storage_type,
        ["spec.storage.type", 'Unsupported value: "ssd"'],
    ),
    "node pool without roles": (
        "KafkaNodePool",
        _pool_without_roles,
        ["spec.roles", "Required value"],
    ),
    "ApplicationSet without a project": (
        "ApplicationSet",
        _appset_without_project,
        ["spec.template.spec.project", "Required value"],
    ),
    "ApplicationSet source typo": (
        "ApplicationSet",
        _appset_source_typo,
        [".spec.template.spec.source.repoUrl: field not declared in schema"],
    ),
    "RoleBinding without a role": ("RoleBinding", _binding_without_role, ["roleRef"]),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_apiserver_refuses_a_broken_object(
    kube: KubeCluster, stacks: dict[str, list[Manifest]], case: str
) -> None:
    kind, breakage, expected = WRONG[case]
    original = next(item for item in stacks["prod"] if item["kind"] == kind)
    kube.apply(original, dry_run=True)  # the unbroken one passes, so the breakage is the cause
    broken: dict[str, Any] = copy.deepcopy(original)
    breakage(broken)
    with pytest.raises(KubectlError) as caught:
        kube.apply(broken, dry_run=True)
    for text in expected:
        assert text in caught.value.stderr, caught.value.stderr
