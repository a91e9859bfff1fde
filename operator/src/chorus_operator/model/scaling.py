"""Autoscaling on consumer lag: a KEDA ScaledObject when KEDA is installed, else an HPA.

The HPA reads an External metric ``kafka_consumergroup_lag`` (kafka-exporter's name,
served by a Prometheus adapter) for the agent's consumer group; KEDA reads the lag
itself, one kafka trigger per topic the group consumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chorus_api.agent import Scaling

LAG_METRIC = "kafka_consumergroup_lag"


def horizontal_pod_autoscaler(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    scaling: Scaling,
    group: str,
) -> dict[str, Any]:
    """An autoscaling/v2 HPA of Deployment ``name`` on the lag of ``group`` per replica."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [dict(owner)],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            # An HPA cannot scale to zero; KEDA can.
            "minReplicas": max(1, scaling.min_replicas),
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": LAG_METRIC,
                            "selector": {"matchLabels": {"consumergroup": group}},
                        },
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(scaling.lag_threshold),
                        },
                    },
                }
            ],
        },
    }


def scaled_object(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    *,
    scaling: Scaling,
    group: str,
    topics: Iterable[str],
    bootstrap_servers: str,
    authentication_ref: str | None = None,
) -> dict[str, Any]:
    """A KEDA ScaledObject of Deployment ``name``: one kafka trigger per consumed topic."""
    triggers = []
    for topic in sorted(set(topics)):
        trigger: dict[str, Any] = {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": bootstrap_servers,
                "consumerGroup": group,
                "topic": topic,
                "lagThreshold": str(scaling.lag_threshold),
                "offsetResetPolicy": "earliest",
            },
        }
        if authentication_ref is not None:
            trigger["authenticationRef"] = {"name": authentication_ref}
        triggers.append(trigger)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [dict(owner)],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "triggers": triggers,
        },
    }
