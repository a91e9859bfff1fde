"""The whole platform for one stack: components wired in order, and the stack outputs."""

from __future__ import annotations

from typing import Any

from chorus_infra.chorus import Chorus, ChorusArgs
from chorus_infra.config import StackConfig
from chorus_infra.flink import FlinkPlatform, FlinkPlatformArgs
from chorus_infra.gitops import GitOps, GitOpsArgs
from chorus_infra.kafka import KafkaPlatform, KafkaPlatformArgs
from chorus_infra.values import ARGOCD_NAME


def run(config: StackConfig) -> dict[str, Any]:
    """Declares every resource of the stack; returns the stack outputs by name.

    Kafka and Flink come up side by side; the Chorus operator waits for both (a Ready Kafka,
    the Flink CRDs); Argo CD installs alongside, and its ApplicationSet waits for the Chorus
    CRDs and the domain namespaces.
    """
    kafka = KafkaPlatform("kafka", KafkaPlatformArgs(config.kafka))
    flink = FlinkPlatform("flink", FlinkPlatformArgs(config.flink, list(config.domains)))
    chorus = Chorus("chorus", ChorusArgs(config, after=[kafka, flink]))
    namespaces: dict[str, Any] = {
        "kafka": kafka.namespace,
        "flinkOperator": flink.operator_namespace,
        "chorus": chorus.namespace,
        "domains": flink.job_namespaces,
    }
    if config.flink.webhook:
        namespaces["certManager"] = config.flink.cert_manager_namespace
    if config.gitops.enabled:
        gitops = GitOps(
            "gitops", GitOpsArgs(config.gitops, list(config.domains), after=[chorus, flink])
        )
        namespaces["argocd"] = gitops.namespace
    return {
        "kafkaClusterName": config.kafka.cluster_name,
        "bootstrapServers": kafka.bootstrap_servers,
        "listenerBootstrapServers": kafka.listener_addresses,
        "namespaces": namespaces,
        "dashboards": dashboards(config),
    }


def dashboards(config: StackConfig) -> dict[str, str]:
    """How to open each web UI or metrics endpoint the platform serves (nothing is exposed)."""
    found = {"flink": "kubectl -n <domain> port-forward svc/<flinkdeployment>-rest 8081"}
    if config.kafka.metrics:
        found["kafkaExporter"] = (
            f"kubectl -n {config.kafka.namespace} port-forward "
            f"deploy/{config.kafka.cluster_name}-kafka-exporter 9404"
        )
    if config.gitops.enabled:
        found["argocd"] = (
            f"kubectl -n {config.gitops.namespace} port-forward svc/{ARGOCD_NAME}-server 8080:443"
        )
    return found
