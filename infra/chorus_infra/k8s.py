"""Turning manifests and chart pins into Pulumi resources, one way for every component."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from chorus_infra.config import ChartPin
from chorus_infra.manifests import Manifest

REPO = Path(__file__).resolve().parents[2]
HELM_TIMEOUT_SECONDS = 900


def repo_path(relative: str) -> str:
    """A path inside this repository, relative to where the program runs (state stays portable)."""
    return os.path.relpath(REPO / relative)


def apply(name: str, manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """The Pulumi resource for one manifest from ``manifests``, passed through unchanged."""
    kind, metadata = manifest["kind"], manifest["metadata"]
    if kind == "Namespace":
        return k8s.core.v1.Namespace(name, metadata=metadata, opts=opts)
    if kind == "ServiceAccount":
        return k8s.core.v1.ServiceAccount(name, metadata=metadata, opts=opts)
    if kind == "Role":
        return k8s.rbac.v1.Role(name, metadata=metadata, rules=manifest["rules"], opts=opts)
    if kind == "RoleBinding":
        return k8s.rbac.v1.RoleBinding(
            name,
            metadata=metadata,
            role_ref=manifest["roleRef"],
            subjects=manifest["subjects"],
            opts=opts,
        )
    extra: dict[str, Any] = {
        key: value
        for key, value in manifest.items()
        if key not in {"apiVersion", "kind", "metadata"}
    }
    return k8s.apiextensions.CustomResource(
        name, api_version=manifest["apiVersion"], kind=kind, metadata=metadata, opts=opts, **extra
    )


def release(
    name: str,
    pin: ChartPin,
    *,
    release_name: str,
    namespace: pulumi.Input[str],
    values: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned upstream chart. Helm installs the chart's CRDs first and the
    release waits until its workloads are ready, so depending on it means "CRDs and operator up"."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
        namespace=namespace,
        values=values,
        create_namespace=False,
        cleanup_on_fail=True,
        timeout=HELM_TIMEOUT_SECONDS,
        opts=opts,
    )


def local_release(
    name: str,
    chart_path: str,
    *,
    release_name: str,
    namespace: pulumi.Input[str],
    values: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a chart in this repository (its version is the chart's own)."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=repo_path(chart_path),
        namespace=namespace,
        values=values,
        create_namespace=False,
        cleanup_on_fail=True,
        timeout=HELM_TIMEOUT_SECONDS,
        opts=opts,
    )
