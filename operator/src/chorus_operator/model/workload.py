"""The agent's workload: ServiceAccount, ConfigMap (runtime.yaml, agent-card.json),
Deployment and Service."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chorus_api.common import ResourceRequirements

CONFIG_DIR = "/etc/chorus"
CARD_FILE = "agent-card.json"
HTTP_PORT_NAME = "http"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
COMMAND = ("chorus", "agent", "run", "--config", f"{CONFIG_DIR}/runtime.yaml")
MODEL_SCRIPT_DIR = f"{CONFIG_DIR}/model-script"
"""Where a ``scripted`` model's ConfigMap script (``model.scriptFrom``) is mounted."""
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


def config_map_file_volume(
    volume: str, config_map: str, key: str, directory: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A volume with one key of a ConfigMap of the pod's namespace, its mount, and the file."""
    source = {"name": config_map, "items": [{"key": key, "path": key}], "defaultMode": 0o444}
    mount = {"name": volume, "mountPath": directory, "readOnly": True}
    return {"name": volume, "configMap": source}, mount, f"{directory}/{key}"


def _meta(
    name: str, namespace: str, labels: Mapping[str, str], owner: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "ownerReferences": [dict(owner)],
    }


def service_account(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    api_access: bool,
) -> dict[str, Any]:
    """The agent's identity; its token is mounted only when it reads Secrets via the API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name, namespace, labels, owner),
        "automountServiceAccountToken": api_access,
    }


def config_map(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    runtime_yaml: str,
    card: Mapping[str, Any],
) -> dict[str, Any]:
    """``runtime.yaml`` and ``agent-card.json``: configuration only, never a secret value."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(name, namespace, labels, owner),
        "data": {
            "runtime.yaml": runtime_yaml,
            CARD_FILE: json.dumps(card, sort_keys=True, indent=2) + "\n",
        },
    }


def resources_manifest(resources: ResourceRequirements | None) -> dict[str, Any]:
    """The container's resources: the spec's, or small defaults (every workload has limits)."""
    if resources is None:
        return {key: dict(value) for key, value in DEFAULT_RESOURCES.items()}
    return resources.model_dump(mode="json", by_alias=True, exclude_none=True)


def restricted_security_context() -> dict[str, Any]:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    image: str,
    replicas: int | None,
    port: int,
    config_hash: str,
    config_map_name: str,
    resources: ResourceRequirements | None,
    volumes: Sequence[Mapping[str, Any]],
    mounts: Sequence[Mapping[str, Any]],
    env: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The agent's Deployment; ``replicas`` is left out when an autoscaler owns it."""
    all_volumes = [
        {"name": "config", "configMap": {"name": config_map_name}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        *(dict(v) for v in volumes),
    ]
    all_mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        *(dict(m) for m in mounts),
    ]

    def probe(path: str, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": HTTP_PORT_NAME}, "periodSeconds": period}

    container: dict[str, Any] = {
        "name": "agent",
        "image": image,
        "command": list(COMMAND),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "livenessProbe": {**probe(HEALTH_PATH, 10), "failureThreshold": 3},
        "readinessProbe": {**probe(READY_PATH, 5), "failureThreshold": 3},
        "startupProbe": {**probe(HEALTH_PATH, 2), "failureThreshold": 60},
        "resources": resources_manifest(resources),
        "securityContext": restricted_security_context(),
        "volumeMounts": all_mounts,
    }
    if env:
        container["env"] = [dict(e) for e in env]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": dict(labels),
                "annotations": {"chorus.dev/config-hash": config_hash},
            },
            "spec": {
                "serviceAccountName": name,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": all_volumes,
            },
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels, owner),
        "spec": spec,
    }


def service(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    port: int,
    port_name: str = HTTP_PORT_NAME,
) -> dict[str, Any]:
    """A ClusterIP Service in front of the pods (A2A gateway, card, health, metrics)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, labels, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }
