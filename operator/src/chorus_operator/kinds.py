"""Every Kubernetes kind the operator reads or writes, and the RBAC rules that allows.

One place, so the Helm chart's ClusterRole (``charts/chorus-operator``) can match it rule
for rule; ``docs/operator.md`` lists the same table. :func:`resource` gives the lightkube
class of a kind: lightkube's own models for built-in kinds, generic resources for CRDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_global_resource, create_namespaced_resource


@dataclass(frozen=True)
class Kind:
    """One kind: where it is served, and the verbs the operator needs on it."""

    api_version: str
    kind: str
    plural: str
    verbs: tuple[str, ...]
    namespaced: bool = True
    builtin: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


_READ = ("get", "list", "watch")
_WRITE = (*_READ, "create", "patch", "delete")

AGENT = Kind("chorus.dev/v1alpha1", "Agent", "agents", (*_READ, "patch"))
TOOL = Kind("chorus.dev/v1alpha1", "Tool", "tools", (*_READ, "patch"))
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments", _WRITE, builtin=True)
SERVICE = Kind("v1", "Service", "services", _WRITE, builtin=True)
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts", _WRITE, builtin=True)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps", _WRITE, builtin=True)
SECRET = Kind("v1", "Secret", "secrets", ("get",), builtin=True)
NETWORK_POLICY = Kind(
    "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", _WRITE, builtin=True
)
HPA = Kind(
    "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", _WRITE, builtin=True
)
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role", "roles", _WRITE, builtin=True)
ROLE_BINDING = Kind(
    "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", _WRITE, builtin=True
)
KAFKA = Kind("kafka.strimzi.io/v1", "Kafka", "kafkas", ("get",))
KAFKA_TOPIC = Kind("kafka.strimzi.io/v1", "KafkaTopic", "kafkatopics", _WRITE)
KAFKA_USER = Kind("kafka.strimzi.io/v1", "KafkaUser", "kafkausers", _WRITE)
FLINK_DEPLOYMENT = Kind("flink.apache.org/v1beta1", "FlinkDeployment", "flinkdeployments", _WRITE)
SCALED_OBJECT = Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects", _WRITE)
CRD = Kind(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    ("get",),
    namespaced=False,
    builtin=True,
)
EVENT = Kind("v1", "Event", "events", ("create", "patch"), builtin=True)
EVENT_V1 = Kind("events.k8s.io/v1", "Event", "events", ("create", "patch"), builtin=True)
NAMESPACE = Kind("v1", "Namespace", "namespaces", ("list", "watch"), builtin=True)
POD = Kind("v1", "Pod", "pods", ("list",), builtin=True)
"""Read only to tell why an agent's workload is not available (the kubelet's reason)."""
CLUSTER_PEERING = Kind(
    "kopf.dev/v1",
    "ClusterKopfPeering",
    "clusterkopfpeerings",
    ("get", "list", "watch", "patch", "create"),
    namespaced=False,
)
PEERING = Kind(
    "kopf.dev/v1", "KopfPeering", "kopfpeerings", ("get", "list", "watch", "patch", "create")
)

KINDS: tuple[Kind, ...] = (
    AGENT,
    TOOL,
    DEPLOYMENT,
    SERVICE,
    SERVICE_ACCOUNT,
    CONFIG_MAP,
    SECRET,
    NETWORK_POLICY,
    HPA,
    ROLE,
    ROLE_BINDING,
    KAFKA,
    KAFKA_TOPIC,
    KAFKA_USER,
    FLINK_DEPLOYMENT,
    SCALED_OBJECT,
    CRD,
    EVENT,
    EVENT_V1,
    NAMESPACE,
    POD,
    CLUSTER_PEERING,
    PEERING,
)
"""Everything the operator touches, with the verbs it uses. Besides these: the status
subresources of Agent and Tool (``agents/status``, ``tools/status``: get, patch). The
operator creates the Roles that let an agent read its Kafka credentials (``secrets``
get, named); it holds that right itself in the Kafka namespace, so no ``escalate`` or
``bind`` is needed. Creating the peering object is optional (the chart ships it)."""

STATUS_SUBRESOURCES: tuple[str, ...] = ("agents/status", "tools/status")

CHILD_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT,
    SERVICE,
    SERVICE_ACCOUNT,
    CONFIG_MAP,
    NETWORK_POLICY,
    HPA,
    ROLE,
    ROLE_BINDING,
    KAFKA_TOPIC,
    KAFKA_USER,
    FLINK_DEPLOYMENT,
    SCALED_OBJECT,
)
"""Kinds an Agent or a Tool may own; pruning looks for leftovers among them."""

KAFKA_SIDE_KINDS: tuple[Kind, ...] = (KAFKA_TOPIC, KAFKA_USER, ROLE, ROLE_BINDING)
"""Children in the Kafka namespace (what Strimzi serves, and access to its Secrets)."""


def child_kinds_in(
    namespace: str, *, owner_namespace: str, kafka_namespace: str
) -> tuple[Kind, ...]:
    """The child kinds an owner in ``owner_namespace`` can have in ``namespace``.

    Its own namespace holds no Role (nor, unless it is the Kafka namespace too, KafkaTopics
    and KafkaUsers); the Kafka namespace holds only those. Listing only these keeps the
    operator within the rules the chart grants per namespace.
    """
    if namespace == owner_namespace == kafka_namespace:
        return CHILD_KINDS
    if namespace == kafka_namespace:
        return KAFKA_SIDE_KINDS
    return tuple(kind for kind in CHILD_KINDS if kind not in KAFKA_SIDE_KINDS)


def rbac_rules() -> list[dict[str, Any]]:
    """The rules the operator needs, one per (group, verbs), for the chart and the docs."""
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for kind in KINDS:
        grouped.setdefault((kind.group, kind.verbs), []).append(kind.plural)
    rules = [
        {"apiGroups": [group], "resources": sorted(set(plurals)), "verbs": list(verbs)}
        for (group, verbs), plurals in grouped.items()
    ]
    rules.append(
        {
            "apiGroups": ["chorus.dev"],
            "resources": list(STATUS_SUBRESOURCES),
            "verbs": ["get", "patch"],
        }
    )
    return rules


def find(api_version: str, kind: str) -> Kind:
    """The :class:`Kind` of ``api_version``/``kind``; ``KeyError`` naming it if unknown."""
    for entry in KINDS:
        if entry.api_version == api_version and entry.kind == kind:
            return entry
    raise KeyError(f"{api_version} {kind}: not a kind the operator manages")


def resource(entry: Kind) -> Any:
    """The lightkube resource class of ``entry`` (its own model, or a generic one)."""
    if entry.builtin:
        return resource_registry.load(entry.api_version, entry.kind)
    if entry.namespaced:
        return create_namespaced_resource(entry.group, entry.version, entry.kind, entry.plural)
    return create_global_resource(entry.group, entry.version, entry.kind, entry.plural)
