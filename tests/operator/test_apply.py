"""The apply helper: skip unchanged objects, restore drift, prune what is not desired."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from chorus_operator import apply, kinds
from lightkube import AsyncClient, KubeConfig

from tests.operator.harness import Cluster, unique, wait_for


def config_map(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"chorus.dev/agent": "a"}},
        "data": data,
    }


@pytest.mark.unit
def test_covers_compares_what_the_operator_sets() -> None:
    live = {"spec": {"a": 1, "b": [{"x": 1, "y": 2}], "extra": True}}
    assert apply.covers(live, {"spec": {"a": 1.0, "b": [{"x": 1}]}})
    assert not apply.covers(live, {"spec": {"a": 2}})
    assert not apply.covers(live, {"spec": {"b": [{"x": 1}, {"x": 2}]}})
    assert not apply.covers(live, {"spec": {"missing": 0}})
    assert not apply.covers({"v": 1}, {"v": True})


@pytest.mark.unit
def test_up_to_date_needs_the_same_hash_and_the_same_values() -> None:
    desired = config_map("c", "ns", key="v")
    stamped = apply.with_hash(desired)
    assert stamped["metadata"]["annotations"][apply.APPLIED_HASH] == apply.manifest_hash(desired)
    assert apply.up_to_date(stamped, stamped)
    assert not apply.up_to_date(None, stamped)
    edited = {**stamped, "data": {"key": "hand-edited"}}
    assert not apply.up_to_date(edited, stamped)
    older = apply.with_hash(config_map("c", "ns", key="v", gone="x"))
    assert not apply.up_to_date(older, stamped)  # a field to remove: the hash differs


@pytest.mark.unit
def test_object_refs_name_the_object() -> None:
    assert str(apply.ObjectRef.of(config_map("c", "ns"))) == "ConfigMap ns/c"


@pytest.mark.integration
def test_apply_writes_only_changes_restores_drift_and_prunes(cluster: Cluster) -> None:
    namespace = cluster.namespace(unique("apply"))

    async def scenario() -> list[Any]:
        client = AsyncClient(config=KubeConfig.from_file(cluster.kube.admin_kubeconfig))
        try:
            results: list[Any] = []
            desired = config_map("c", namespace, key="v")
            results.append((await apply.apply(client, desired))[0])
            results.append((await apply.apply(client, desired))[0])
            cluster.patch("configmap", "c", namespace, {"data": {"key": "hand-edited"}})
            results.append((await apply.apply(client, desired))[0])
            live = await apply.get(client, apply.ObjectRef.of(desired))
            results.append((live or {})["data"])
            other = config_map("d", namespace, key="w")
            await apply.apply(client, other)
            results.append(
                await apply.prune(
                    client,
                    namespaces=[namespace],
                    labels={"chorus.dev/agent": "a"},
                    keep=[apply.ObjectRef.of(desired)],
                    child_kinds=[kinds.CONFIG_MAP],
                )
            )
            results.append(await apply.delete(client, apply.ObjectRef.of(other)))
            return results
        finally:
            await client.close()

    created, unchanged, restored, data, pruned, again = asyncio.run(scenario())
    assert (created, unchanged, restored) == (
        apply.Outcome.CREATED,
        apply.Outcome.UNCHANGED,
        apply.Outcome.UPDATED,
    )
    assert data == {"key": "v"}
    assert pruned == [apply.ObjectRef("v1", "ConfigMap", namespace, "d")]
    assert again is False
    shown = cluster.kube.kubectl(
        "get", "configmap", "c", "-n", namespace, "--show-managed-fields", "-o", "json"
    ).stdout
    managers = {m["manager"] for m in json.loads(shown)["metadata"]["managedFields"]}
    assert apply.FIELD_MANAGER in managers


@pytest.mark.integration
def test_prune_skips_kinds_it_may_not_list_and_says_so(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    # The restricted user may list ConfigMaps in this namespace, and nothing else.
    namespace = cluster.namespace(unique("prune"))
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "configmaps", "namespace": namespace},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "delete"]}
            ],
        }
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "configmaps", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmaps",
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
    cluster.apply(config_map("stale", namespace, key="v"))

    async def scenario() -> list[apply.ObjectRef]:
        config = KubeConfig.from_file(cluster.kube.restricted_kubeconfig)
        client = AsyncClient(config=config)
        try:
            return await apply.prune(
                client,
                namespaces=[namespace],
                labels={"chorus.dev/agent": "a"},
                keep=[],
                child_kinds=[kinds.ROLE, kinds.CONFIG_MAP],
            )
        finally:
            await client.close()

    with caplog.at_level("WARNING", logger="chorus_operator.apply"):
        # RBAC bindings take a moment to reach the authorizer: until then nothing is pruned.
        pruned = wait_for(lambda: asyncio.run(scenario()), what="the ConfigMap pruned")
    assert pruned == [apply.ObjectRef("v1", "ConfigMap", namespace, "stale")]
    assert f"not allowed to list roles in namespace {namespace}" in caplog.text
