"""The typed inputs of the model layer: everything the reconcile layer resolved from the cluster.

Frozen dataclasses, so a build is a pure function of them: the reconcile layer reads the
Agent, the Tools it refers to, the operator's settings and what exists (KEDA, Secrets), and
hands one of these to :func:`chorus_operator.model.agent.build_agent` or
:func:`chorus_operator.model.tool.build_tool`. No kopf, no API calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from chorus_api.agent import Agent
from chorus_api.common import SecretKeyRef
from chorus_api.tool import Tool

KafkaAuthentication = Literal["scram-sha-512", "tls"]
TopicDeletionPolicy = Literal["retain", "delete"]


@dataclass(frozen=True)
class OperatorSettings:
    """How the operator is installed (its chart's values): images, the Kafka cluster, policies.

    ``kafka_namespace`` is where KafkaTopics and KafkaUsers live (the Strimzi entity
    operator watches only it); when it differs from an Agent's namespace, those children
    cannot carry owner references and are cleaned up by the reconcile layer's finalizer.
    """

    agent_image: str
    """The default agent runtime image (an Agent's ``spec.image`` overrides it)."""
    flink_image: str
    """The PyFlink image every FlinkDeployment runs."""
    kafka_cluster: str = "chorus"
    """The Strimzi Kafka cluster's name (``strimzi.io/cluster`` label)."""
    kafka_namespace: str = "kafka"
    """The namespace of the Kafka cluster, its KafkaTopics and KafkaUsers."""
    bootstrap_servers: str = "chorus-kafka-bootstrap.kafka.svc:9092"
    """``host:port`` pairs of the listener agents use."""
    kafka_port: int = 9092
    """The broker port of that listener (NetworkPolicy egress)."""
    kafka_tls: bool = False
    """Whether that listener speaks TLS (the cluster CA is then trusted)."""
    kafka_authentication: KafkaAuthentication | None = None
    """The listener's client authentication; ``None``: none (no KafkaUser credentials)."""
    kafka_authorization: bool = False
    """Whether the cluster enforces ACLs (``simple`` authorization); KafkaUsers are made
    either way when authentication is on, their ACLs only matter with it."""
    flink_service_account: str = "flink"
    """The ServiceAccount FlinkDeployments run as (in the Agent's namespace)."""
    topic_deletion_policy: TopicDeletionPolicy = "retain"
    """``retain``: deleting an Agent keeps its Kafka topics; ``delete``: deletes them."""
    topic_replicas: int = 1
    """Replication factor of the topics the operator makes."""
    platform_topic_partitions: int = 3
    """Partitions of an agent's own topics (inbox, replies, dlq, tasks)."""
    watch_namespaces: tuple[str, ...] = ()
    """The namespaces the operator watches; empty: all."""
    mcp_server_default_port: int = 8000
    """Unused by the model unless a Tool's server leaves its port out (it has a default)."""
    apiserver_port: int = 443
    """The kube-apiserver's port, for the egress rule of agents that read Secrets via the API."""
    apiserver_cidr: str | None = None
    """The apiserver's address range for that egress rule; ``None``: any address on the port."""
    keda_auth: bool = False
    """Reserved: KEDA authentication to Kafka (a TriggerAuthentication) is not built yet."""


@dataclass(frozen=True)
class ResolvedTool:
    """A Tool an Agent refers to, as the reconcile layer found it.

    ``offered`` is the names the server listed (``status.discoveredTools``), ``None`` while
    it has not been discovered yet. ``pod_labels``/``port`` are set when the operator runs
    the server in-cluster (NetworkPolicy egress by pod selector); a remote server is reached
    by ``endpoint``'s port.
    """

    name: str
    namespace: str
    endpoint: str
    offered: tuple[str, ...] | None = None
    bearer_token_secret: SecretKeyRef | None = None
    timeout_seconds: float = 30.0
    pod_labels: Mapping[str, str] | None = None
    port: int | None = None


@dataclass(frozen=True)
class AgentInputs:
    """Everything :func:`build_agent` needs.

    ``tools`` maps each ``spec.tools[].ref`` to its :class:`ResolvedTool`, or ``None`` when
    no such Tool exists. ``secrets_present`` maps ``<secret name>`` to whether that Secret
    exists in the Agent's namespace (a name missing from the mapping counts as present:
    the reconcile layer may choose not to check).
    """

    agent: Agent
    uid: str
    tools: Mapping[str, ResolvedTool | None]
    settings: OperatorSettings
    keda_available: bool = False
    secrets_present: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolInputs:
    """Everything :func:`build_tool` needs."""

    tool: Tool
    uid: str
    settings: OperatorSettings
    secrets_present: Mapping[str, bool] = field(default_factory=dict)
