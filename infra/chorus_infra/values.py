"""Pure builders for the Helm values of each chart the program installs.

Every workload a chart runs gets requests and limits from the stack configuration; the
keys are the charts' own (``values.yaml`` of the pinned versions in ``config``).
"""

from __future__ import annotations

from typing import Any

from chorus_infra.config import FlinkConfig, GitOpsConfig, KafkaConfig, StackConfig
from chorus_infra.manifests import bootstrap_address

Values = dict[str, Any]


def strimzi(kafka: KafkaConfig) -> Values:
    """The Strimzi cluster operator watches only its own namespace, where the Kafka lives."""
    return {"watchAnyNamespace": False, "resources": kafka.operator_resources.manifest()}


def cert_manager(flink: FlinkConfig) -> Values:
    each = {"resources": flink.cert_manager_resources.manifest()}
    return {
        "crds": {"enabled": True},
        **each,
        "webhook": each,
        "cainjector": each,
        "startupapicheck": each,
    }


def flink_operator(flink: FlinkConfig, domains: list[str]) -> Values:
    """The operator watches the domain namespaces; the job ServiceAccount and its Role there are
    the program's own objects (``manifests.flink_job_*``), so the chart does not make them."""
    return {
        "watchNamespaces": list(domains),
        "webhook": {"create": flink.webhook},
        "operatorPod": {
            "resources": flink.operator_resources.manifest(),
            "webhook": {"resources": flink.webhook_resources.manifest()},
        },
        "jobServiceAccount": {"create": False, "name": flink.job_service_account},
        "rbac": {"create": True, "jobRole": {"create": False}, "jobRoleBinding": {"create": False}},
    }


ARGOCD_NAME = "argocd"

# Argo CD knows nothing of Chorus resources; with these checks a Tool counts as healthy only
# once the operator reports it Ready, so the Agents' sync wave waits for its Tools.
READY_HEALTH_CHECK = """\
hs = {status = "Progressing", message = "waiting for the Chorus operator"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" and condition.status == "True" then
      hs.status = "Healthy"
      hs.message = condition.message or "Ready"
    elseif condition.type == "Ready" then
      hs.message = condition.message or hs.message
    end
  end
end
return hs
"""


def argocd(gitops: GitOpsConfig) -> Values:
    each = {"resources": gitops.resources.manifest()}
    return {
        "fullnameOverride": ARGOCD_NAME,
        "dex": {"enabled": False},
        "notifications": {"enabled": False},
        "configs": {
            "cm": {
                "resource.customizations.health.chorus.dev_Tool": READY_HEALTH_CHECK,
                "resource.customizations.health.chorus.dev_Agent": READY_HEALTH_CHECK,
            }
        },
        "controller": each,
        "server": each,
        "repoServer": each,
        "applicationSet": each,
        "redis": each,
        "redisSecretInit": each,
    }


def chorus_operator(config: StackConfig) -> Values:
    """What the Chorus operator needs to know about the platform (its chart's values contract)."""
    kafka = config.kafka
    client = kafka.client
    return {
        "kafka": {
            "clusterName": kafka.cluster_name,
            "namespace": kafka.namespace,
            "bootstrapServers": bootstrap_address(kafka, client),
            "listener": client.name,
            "tls": client.tls,
            "authentication": client.authentication or "none",
            "authorization": kafka.authorization is not None,
        },
        "watchNamespaces": list(config.domains),
        "flink": {"serviceAccount": config.flink.job_service_account},
        "resources": config.operator.resources.manifest(),
    }
