"""The real Pulumi engine (tests/services/pulumi.py) against the harness kube-apiserver.

A tiny inline Automation API program, a local file backend, the provider built from the Go
module proxy and installed as the locked SDK's version: ``up`` creates a Namespace and a
ConfigMap, a second ``up`` changes nothing, ``refresh`` finds no drift, ``destroy`` removes
both. Without the engine built (`python -m tests.services prepare`) it skips outside CI and
fails in CI.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi import automation as auto

from tests.services.kube import KubeCluster
from tests.services.pulumi import PulumiEngine

pytestmark = pytest.mark.integration

PROJECT = "chorus-engine-smoke"
RESOURCES = 4
"""The stack, the explicit provider, the Namespace and the ConfigMap."""


def smoke_program(kubeconfig: str, namespace: str) -> auto.PulumiFn:
    def program() -> None:
        provider = k8s.Provider("harness", kubeconfig=kubeconfig)
        # A minute, not the provider's ten, for whatever fails to become ready or to go.
        wait = pulumi.CustomTimeouts(create="60s", update="60s", delete="60s")
        opts = pulumi.ResourceOptions(provider=provider, custom_timeouts=wait)
        made = k8s.core.v1.Namespace("namespace", metadata={"name": namespace}, opts=opts)
        k8s.core.v1.ConfigMap(
            "config",
            metadata={"name": "smoke", "namespace": made.metadata.name},
            data={"greeting": "hello"},
            opts=opts,
        )
        pulumi.export("namespace", made.metadata.name)

    return program


def smoke_stack(
    engine: PulumiEngine, kube: KubeCluster, tmp_path: Path, namespace: str
) -> auto.Stack:
    backend = tmp_path / "state"
    backend.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    return auto.create_or_select_stack(
        "smoke",
        project_name=PROJECT,
        program=smoke_program(kube.admin_kubeconfig, namespace),
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work),
            pulumi_home=engine.home,
            env_vars=engine.env(backend),
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=engine.root),
            project_settings=auto.ProjectSettings(
                name=PROJECT,
                runtime="python",
                backend=auto.ProjectBackend(url=backend.as_uri()),
            ),
        ),
    )


@contextmanager
def controllers(kube: KubeCluster, namespace: str, timeout: float = 60) -> Iterator[None]:
    """Plays, for one namespace, the two controllers a delete waits for and the harness does
    not run (it has no controller manager), so that the provider's wait for deletion ends:

    - the garbage collector: the provider deletes in the foreground, which puts the
      ``foregroundDeletion`` finalizer on the object; with no dependents left, it goes;
    - the namespace controller: once the namespace is deleted and empty, it is finalized
      (``spec.finalizers`` emptied), so it is gone rather than ``Terminating`` for ever.
    """
    stop = threading.Event()

    def release(kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        left = [f for f in meta.get("finalizers", []) if f != "foregroundDeletion"]
        if meta.get("deletionTimestamp") and left != meta.get("finalizers", []):
            where = ["-n", namespace] if kind != "namespace" else []
            patch = json.dumps({"metadata": {"finalizers": left}})
            kube.kubectl(
                "patch", kind, meta["name"], *where, "--type=merge", "-p", patch, check=False
            )

    def run() -> None:
        while not stop.wait(0.5):
            listed = kube.kubectl("get", "configmaps", "-n", namespace, "-o", "json", check=False)
            items = json.loads(listed.stdout)["items"] if listed.returncode == 0 else []
            for item in items:
                release("configmap", item)
            got = kube.kubectl("get", "namespace", namespace, "-o", "json", check=False)
            if got.returncode != 0:
                return  # gone
            found = json.loads(got.stdout)
            if items or not found["metadata"].get("deletionTimestamp"):
                continue
            if found["spec"].get("finalizers"):
                found["spec"]["finalizers"] = []
                path = f"/api/v1/namespaces/{namespace}/finalize"
                kube.kubectl(
                    "replace", "--raw", path, "-f", "-", input=json.dumps(found), check=False
                )
            release("namespace", found)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout)


def provider_versions(stack: auto.Stack) -> set[str]:
    """The version of every kubernetes provider in the stack's state."""
    deployment = stack.export_stack().deployment or {}
    resources = deployment.get("resources", [])
    return {
        r["inputs"].get("version", "")
        for r in resources
        if r["type"] == "pulumi:providers:kubernetes"
    }


def test_up_again_refresh_destroy(
    pulumi_engine: PulumiEngine, kube: KubeCluster, tmp_path: Path
) -> None:
    name = f"pulumi-smoke-{uuid.uuid4().hex[:8]}"
    stack = smoke_stack(pulumi_engine, kube, tmp_path, name)
    printed: list[str] = []

    up = stack.up(on_output=printed.append, color="never")
    assert up.summary.result == "succeeded", "\n".join(printed)
    assert up.summary.resource_changes == {"create": RESOURCES}
    assert up.outputs["namespace"].value == name
    got = json.loads(kube.kubectl("get", "configmap", "smoke", "-n", name, "-o", "json").stdout)
    assert got["data"] == {"greeting": "hello"}
    # The engine ran the provider built as the locked SDK's version (no other was asked for).
    assert provider_versions(stack) == {pulumi_engine.kubernetes_version}

    again = stack.up(expect_no_changes=True, color="never")
    assert again.summary.resource_changes == {"same": RESOURCES}

    refreshed = stack.refresh(expect_no_changes=True, color="never")
    assert set(refreshed.summary.resource_changes or {}) == {"same"}

    with controllers(kube, name):
        destroyed = stack.destroy(on_output=printed.append, color="never")
    assert destroyed.summary.resource_changes == {"delete": RESOURCES}
    gone = kube.kubectl("get", "namespace", name, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    stack.workspace.remove_stack("smoke")
