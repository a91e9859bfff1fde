"""Every object the model builds for every golden case is accepted by a real kube-apiserver
(server-side apply, strict field validation, dry run) with the upstream Strimzi and Flink
operator CRDs. Namespaces are created for real, under a per-test prefix."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import pytest

from tests.operator.model.golden import build_case, cases
from tests.services.kube import KubeCluster

pytestmark = pytest.mark.integration

NOT_SERVED = frozenset({"ScaledObject"})
"""Kinds whose CRDs the test cluster does not have (KEDA is not installed there)."""


def isolate(children: tuple[dict[str, Any], ...], prefix: str) -> list[dict[str, Any]]:
    """The children with every namespace renamed ``<prefix>-<name>``."""
    found = []
    for original in children:
        child = copy.deepcopy(original)
        child["metadata"]["namespace"] = f"{prefix}-{child['metadata']['namespace']}"
        for subject in child.get("subjects", []):
            subject["namespace"] = f"{prefix}-{subject['namespace']}"
        found.append(child)
    return found


@pytest.mark.parametrize("case", cases())
def test_apiserver_accepts_every_child(kube: KubeCluster, case: str) -> None:
    children = [c for c in build_case(case).children if c["kind"] not in NOT_SERVED]
    prefix = f"m{secrets.token_hex(3)}"
    objects = isolate(tuple(children), prefix)
    for namespace in sorted({o["metadata"]["namespace"] for o in objects}):
        kube.kubectl("create", "namespace", namespace)
    for obj in objects:
        result = kube.apply(obj, dry_run=True)
        assert "serverside-applied (server dry run)" in result.stdout, result.stdout
