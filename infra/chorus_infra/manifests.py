"""Pure builders for every Kubernetes object the program declares directly.

Config in, manifest dicts out: no Pulumi, no API calls. The components pass these dicts to
their resources unchanged, and ``declared_objects`` lists all of them for one stack, so tests
can send exactly what ``pulumi up`` would create to a real kube-apiserver.
"""

from __future__ import annotations

from typing import Any

from chorus_infra.config import GitOpsConfig, KafkaConfig, Listener, NodePool, StackConfig

Manifest = dict[str, Any]

PART_OF = {"app.kubernetes.io/part-of": "chorus", "app.kubernetes.io/managed-by": "pulumi"}
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}
"""Pulumi's await: `pulumi up` holds dependents until the resource reports condition Ready."""

STRIMZI_API = "kafka.strimzi.io/v1"
ARGO_API = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
RACK_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
# Sync waves inside each domain's Application: Tools first, so an Agent never waits on a
# Tool Argo CD has not applied yet (the Chorus operator retries either way).
TOOL_WAVE, AGENT_WAVE = "-1", "1"


def labels(component: str) -> dict[str, str]:
    return {**PART_OF, "app.kubernetes.io/component": component}


def namespace(name: str, component: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels(component)},
    }


# --- Kafka -------------------------------------------------------------------------------


def bootstrap_address(kafka: KafkaConfig, listener: Listener) -> str:
    """Strimzi's bootstrap Service for a listener: ``<cluster>-kafka-bootstrap.<ns>.svc:<port>``."""
    return f"{kafka.cluster_name}-kafka-bootstrap.{kafka.namespace}.svc:{listener.port}"


def _listener(item: Listener) -> Manifest:
    out: Manifest = {"name": item.name, "port": item.port, "type": item.type, "tls": item.tls}
    if item.authentication is not None:
        out["authentication"] = {"type": item.authentication}
    return out


def kafka_broker_config(kafka: KafkaConfig) -> dict[str, Any]:
    replication = kafka.replication
    config: dict[str, Any] = {
        "default.replication.factor": replication.factor,
        "min.insync.replicas": replication.min_insync_replicas,
        "offsets.topic.replication.factor": replication.factor,
        "transaction.state.log.replication.factor": replication.factor,
        "transaction.state.log.min.isr": replication.min_insync_replicas,
        # Topics come from KafkaTopic resources (the Chorus operator), never from a typo.
        "auto.create.topics.enable": False,
        # An agent's transaction is open for milliseconds (its commit cycle) and times out
        # after 8 s; checking every second aborts a killed pod's within about 9 s, so its
        # replacement (a new transactional id) does not stall read_committed readers longer.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
    }
    if kafka.rack is not None:
        config["replica.selector.class"] = RACK_SELECTOR  # consumers fetch from their zone
    return config


def kafka_cluster(kafka: KafkaConfig) -> Manifest:
    """The Kafka cluster (KRaft: its nodes come from the KafkaNodePools)."""
    cluster: Manifest = {
        "version": kafka.version,
        "metadataVersion": kafka.effective_metadata_version,
        "listeners": [_listener(item) for item in kafka.listeners],
        "config": kafka_broker_config(kafka),
    }
    if kafka.authorization is not None:
        cluster["authorization"] = {
            "type": kafka.authorization.type,
            "superUsers": list(kafka.authorization.super_users),
        }
    if kafka.rack is not None:
        cluster["rack"] = {"type": "topology-label", "topologyKey": kafka.rack.topology_key}
    if kafka.metrics:
        cluster["metricsConfig"] = {
            "type": "strimziMetricsReporter",
            "values": {
                "allowList": [
                    "kafka_controller.*",
                    "kafka_log.*",
                    "kafka_network.*",
                    "kafka_server.*",
                    "kafka_cluster.*",
                ]
            },
        }
    entity = kafka.entity_operator_resources
    entity_operator: Manifest = {
        "topicOperator": {"resources": entity.manifest()},
        "userOperator": {"resources": entity.manifest()},
    }
    if kafka.pod_disruption_budget is not None:
        unavailable = kafka.pod_disruption_budget.max_unavailable
        cluster["template"] = {"podDisruptionBudget": {"maxUnavailable": unavailable}}
        entity_operator["template"] = {"podDisruptionBudget": {"maxUnavailable": unavailable}}
    spec: Manifest = {"kafka": cluster, "entityOperator": entity_operator}
    if kafka.metrics:
        spec["kafkaExporter"] = {
            "topicRegex": ".*",
            "groupRegex": ".*",
            "resources": kafka.exporter_resources.manifest(),
        }
    return {
        "apiVersion": STRIMZI_API,
        "kind": "Kafka",
        "metadata": {
            "name": kafka.cluster_name,
            "namespace": kafka.namespace,
            "labels": labels("kafka"),
            "annotations": dict(WAIT_READY),
        },
        "spec": spec,
    }


def kafka_node_pool(kafka: KafkaConfig, pool: NodePool) -> Manifest:
    storage: Manifest = {"type": pool.storage.type}
    if pool.storage.type == "ephemeral":
        storage["sizeLimit"] = pool.storage.size
    else:
        storage["size"] = pool.storage.size
        storage["deleteClaim"] = pool.storage.delete_claim
        if pool.storage.storage_class is not None:
            storage["class"] = pool.storage.storage_class
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaNodePool",
        "metadata": {
            "name": pool.name,
            "namespace": kafka.namespace,
            "labels": {**labels("kafka"), "strimzi.io/cluster": kafka.cluster_name},
        },
        "spec": {
            "replicas": pool.replicas,
            "roles": list(pool.roles),
            "storage": storage,
            "resources": pool.resources.manifest(),
        },
    }


# --- Flink jobs --------------------------------------------------------------------------

FLINK_JOB_ROLE = "flink"


def flink_job_service_account(namespace: str, name: str) -> Manifest:
    """The identity FlinkDeployments in a domain namespace run as (``spec.serviceAccount``)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels("flink")},
    }


def flink_job_role(namespace: str) -> Manifest:
    """What a Flink JobManager does natively: start and stop TaskManager pods, keep HA
    state in ConfigMaps, and own them through its Deployment."""
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": FLINK_JOB_ROLE, "namespace": namespace, "labels": labels("flink")},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": list(verbs)},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "deployments/finalizers"],
                "verbs": list(verbs),
            },
        ],
    }


def flink_job_role_binding(namespace: str, service_account: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": f"{FLINK_JOB_ROLE}-role-binding",
            "namespace": namespace,
            "labels": labels("flink"),
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FLINK_JOB_ROLE,
        },
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }


# --- GitOps ------------------------------------------------------------------------------

APPLICATION_SET = "chorus-domains"
ARGO_RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def _wave_patch(kind: str, wave: str) -> Manifest:
    # A strategic-merge patch; with a target, kustomize ignores the placeholder name.
    return {
        "target": {"group": "chorus.dev", "kind": kind},
        "patch": (
            f"apiVersion: chorus.dev/v1alpha1\nkind: {kind}\nmetadata:\n"
            f"  name: any\n  annotations:\n"
            f'    argocd.argoproj.io/sync-wave: "{wave}"\n'
        ),
    }


def application_set(gitops: GitOpsConfig, domains: list[str]) -> Manifest:
    """One Argo CD Application per domain, syncing ``agents/<domain>/deploy/`` (a kustomization)
    into the domain's namespace, with Tools one sync wave before Agents."""
    template = {
        "metadata": {
            "name": "chorus-{{.domain}}",
            # Argo CD owns the generated Applications, so no managed-by: pulumi here.
            "labels": {
                "app.kubernetes.io/part-of": "chorus",
                "app.kubernetes.io/component": "domain",
                "chorus.dev/domain": "{{.domain}}",
            },
            # Deleting an Application deletes its Agents and Tools first, while Argo CD and the
            # Chorus operator still run (`pulumi destroy` removes the ApplicationSet first).
            "finalizers": [ARGO_RESOURCES_FINALIZER],
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": gitops.repo_url or "",
                "targetRevision": gitops.target_revision,
                "path": "agents/{{.domain}}/deploy",
                "kustomize": {
                    "patches": [_wave_patch("Tool", TOOL_WAVE), _wave_patch("Agent", AGENT_WAVE)]
                },
            },
            "destination": {"server": IN_CLUSTER, "namespace": "{{.namespace}}"},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["ServerSideApply=true"],
                "retry": {
                    "limit": 5,
                    "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"},
                },
            },
        },
    }
    return {
        "apiVersion": ARGO_API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": APPLICATION_SET,
            "namespace": gitops.namespace,
            "labels": labels("gitops"),
        },
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "list": {
                        "elements": [{"domain": domain, "namespace": domain} for domain in domains]
                    }
                }
            ],
            "template": template,
        },
    }


# --- everything, for one stack -----------------------------------------------------------


def platform_namespaces(config: StackConfig) -> list[Manifest]:
    """Every Namespace object, platform ones first, then one per domain."""
    found = [namespace(config.kafka.namespace, "kafka")]
    if config.flink.webhook:
        found.append(namespace(config.flink.cert_manager_namespace, "cert-manager"))
    found.append(namespace(config.flink.operator_namespace, "flink"))
    found.append(namespace(config.operator.namespace, "operator"))
    if config.gitops.enabled:
        found.append(namespace(config.gitops.namespace, "gitops"))
    found += [namespace(domain, "domain") for domain in config.domains]
    return found


def declared_objects(config: StackConfig) -> list[Manifest]:
    """Every Kubernetes object the program creates itself (Helm releases excluded), in an
    order a plain apply accepts: namespaces first."""
    found = platform_namespaces(config)
    account = config.flink.job_service_account
    for domain in config.domains:
        found += [
            flink_job_service_account(domain, account),
            flink_job_role(domain),
            flink_job_role_binding(domain, account),
        ]
    found += [kafka_node_pool(config.kafka, pool) for pool in config.kafka.node_pools]
    found.append(kafka_cluster(config.kafka))
    if config.gitops.enabled:
        found.append(application_set(config.gitops, config.domains))
    return found
