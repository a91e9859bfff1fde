"""The agent's NetworkPolicy: ingress to its gateway; egress only to DNS, the Kafka
brokers, its tools, its model endpoint and (when it reads Secrets) the kube-apiserver."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.labels import STRIMZI_CLUSTER_LABEL

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Peer:
    """An egress destination: pods (by namespace and labels) on a port, or any host on it."""

    port: int
    namespace: str | None = None
    pod_labels: Mapping[str, str] | None = None


def url_port(url: str) -> int:
    """The port of ``url``: explicit, else 443 for https and 80 for http."""
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80


def _rule(peer: Peer) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": peer.port}]}
    if peer.namespace is not None:
        rule["to"] = [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: peer.namespace}},
                "podSelector": {"matchLabels": dict(peer.pod_labels or {})},
            }
        ]
    return rule


def network_policy(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    settings: OperatorSettings,
    http_port: int,
    peers: Iterable[Peer],
    api_access: bool,
) -> dict[str, Any]:
    """The policy selecting the agent's pods; ``peers`` are its tools and model endpoint."""
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    kafka = _rule(
        Peer(
            settings.kafka_port,
            settings.kafka_namespace,
            {STRIMZI_CLUSTER_LABEL: settings.kafka_cluster, "strimzi.io/kind": "Kafka"},
        )
    )
    others = {
        (p.port, p.namespace or "", tuple(sorted((p.pod_labels or {}).items()))): p for p in peers
    }
    egress = [dns, kafka, *(_rule(others[key]) for key in sorted(others))]
    if api_access:
        api: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": settings.apiserver_port}]}
        if settings.apiserver_cidr is not None:
            api["to"] = [{"ipBlock": {"cidr": settings.apiserver_cidr}}]
        egress.append(api)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [dict(owner)],
        },
        "spec": {
            "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": http_port}]}],
            "egress": egress,
        },
    }
