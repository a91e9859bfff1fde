"""Who may do what on Kafka: least-privilege ACLs, the KafkaUsers that carry them, and
the RBAC that lets an agent read its own Kafka credentials.

:func:`agent_acls` and :func:`stream_acls` are the single statement of what an agent or
a stream job may touch; the KafkaUser manifests render them for Strimzi, and tests apply
the same set through the Kafka Admin API against a secured broker.

An agent may:

- read its subscribed topics, its own inbox and replies, and the AgentCard registry;
- read and write its own tasks topic (it reads its tasks back when it starts);
- write its publish topics, its dead-letter topic, the namespace's audit topic and the
  registry (its own card);
- write the inbox (requests) and the replies topic (answers) of every Agent of its
  namespace: A2A over Kafka writes a request to the callee's inbox and the answer to the
  caller's replies topic, and which agent calls which is not declared. These topics, and
  only these, start with ``chorus.<ns>.a2a.`` (:func:`chorus_api.topics.a2a_prefix`), so
  this is one prefixed ACL: the KafkaUser does not grow with the namespace, and a new
  Agent changes no other Agent's KafkaUser;
- join its consumer group ``chorus.<ns>.<agent>`` and the helper groups
  ``chorus.<ns>.<agent>.*`` (registry reader, replies reader);
- use transactional ids ``chorus.<ns>.<agent>.*`` (exactly-once only).

Nothing else: no Create (the operator makes every topic), no cluster operations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from chorus_api.streams import ResolvedStream
from chorus_api.topics import (
    AGENT_CARDS_TOPIC,
    a2a_prefix,
    audit_topic,
    consumer_group,
    dead_letter_topic,
    inbox_topic,
    replies_topic,
    stream_group,
    tasks_topic,
    transactional_id_prefix,
)

ResourceType = Literal["topic", "group", "transactionalId", "cluster"]
PatternType = Literal["literal", "prefix"]

KAFKA_USER_API = "kafka.strimzi.io/v1"

_READ = ("Describe", "Read")
_WRITE = ("Describe", "Write")


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule: ``operations`` on a resource, from any host."""

    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    operations: tuple[str, ...]

    def strimzi(self) -> dict[str, Any]:
        """The rule as in a KafkaUser's ``spec.authorization.acls``."""
        return {
            "type": "allow",
            "resource": {
                "type": self.resource_type,
                "name": self.name,
                "patternType": self.pattern_type,
            },
            "operations": list(self.operations),
            "host": "*",
        }


def _merge(
    grants: Iterable[tuple[ResourceType, str, PatternType, tuple[str, ...]]],
) -> tuple[Acl, ...]:
    """One rule per resource, operations unioned and sorted; rules sorted: deterministic."""
    merged: dict[tuple[ResourceType, str, PatternType], set[str]] = {}
    for resource_type, name, pattern, operations in grants:
        merged.setdefault((resource_type, name, pattern), set()).update(operations)
    return tuple(
        Acl(resource_type, name, pattern, tuple(sorted(ops)))
        for (resource_type, name, pattern), ops in sorted(merged.items())
    )


def agent_acls(
    namespace: str,
    agent: str,
    *,
    subscribe: Iterable[str] = (),
    publish: Iterable[str] = (),
    transactional: bool = True,
) -> tuple[Acl, ...]:
    """Exactly what agent ``namespace/agent`` may do on Kafka (see the module's docstring)."""
    grants: list[tuple[ResourceType, str, PatternType, tuple[str, ...]]] = []

    def topic(name: str, operations: tuple[str, ...]) -> None:
        grants.append(("topic", name, "literal", operations))

    for name in subscribe:
        topic(name, _READ)
    topic(inbox_topic(namespace, agent), _READ)
    topic(replies_topic(namespace, agent), _READ)
    topic(tasks_topic(namespace, agent), (*_READ, "Write"))
    topic(AGENT_CARDS_TOPIC, (*_READ, "Write"))
    for name in publish:
        topic(name, _WRITE)
    topic(dead_letter_topic(namespace, agent), _WRITE)
    topic(audit_topic(namespace), _WRITE)
    grants.append(("topic", a2a_prefix(namespace), "prefix", _WRITE))
    group = consumer_group(namespace, agent)
    grants.append(("group", group, "literal", ("Read",)))
    grants.append(("group", f"{group}.", "prefix", ("Read",)))
    if transactional:
        grants.append(
            ("transactionalId", transactional_id_prefix(namespace, agent), "prefix", _WRITE)
        )
    return _merge(grants)


def stream_acls(namespace: str, deployment: str, resolved: ResolvedStream) -> tuple[Acl, ...]:
    """Exactly what the job of FlinkDeployment ``namespace/deployment`` may do: read its
    input topics, write its output topics, its own group and transactional ids.

    Its output topics are readable too: the exactly-once sinks pool their transactional ids,
    and on start they find their lingering transactions with DescribeProducers on those
    topics, which the broker allows only to a principal with Read on them.
    """
    grants: list[tuple[ResourceType, str, PatternType, tuple[str, ...]]] = []
    for name in resolved.inputs:
        grants.append(("topic", name, "literal", _READ))
    for name in resolved.outputs:
        grants.append(("topic", name, "literal", (*_READ, "Write")))
    group = stream_group(namespace, deployment)
    grants.append(("group", group, "literal", ("Read",)))
    grants.append(("transactionalId", f"{group}.", "prefix", _WRITE))
    return _merge(grants)


def agent_user_name(namespace: str, agent: str) -> str:
    """The agent's KafkaUser (and Strimzi Secret, and SCRAM user name): ``<ns>.<agent>``.

    Unique in the Kafka namespace: neither part contains a dot.
    """
    return f"{namespace}.{agent}"


def stream_user_name(namespace: str, agent: str, stream: str) -> str:
    """A stream's KafkaUser: ``<ns>.<agent>.<stream>`` (never equal to an agent's)."""
    return f"{namespace}.{agent}.{stream}"


def kafka_user(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    authentication: str | None,
    acls: tuple[Acl, ...],
    owner: dict[str, Any] | None,
) -> dict[str, Any]:
    """A Strimzi KafkaUser with ``simple`` authorization and the given authentication."""
    spec: dict[str, Any] = {
        "authorization": {"type": "simple", "acls": [acl.strimzi() for acl in acls]}
    }
    if authentication is not None:
        spec = {"authentication": {"type": authentication}, **spec}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": KAFKA_USER_API, "kind": "KafkaUser", "metadata": metadata, "spec": spec}


def cluster_ca_secret(cluster: str) -> str:
    """The Secret Strimzi keeps the cluster CA certificate in (key ``ca.crt``)."""
    return f"{cluster}-cluster-ca-cert"


def secret_reader_rbac(
    *,
    name: str,
    kafka_namespace: str,
    secrets: Iterable[str],
    service_account: str,
    service_account_namespace: str,
    labels: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Role and RoleBinding in the Kafka namespace: ``get`` on exactly ``secrets`` for the
    agent's ServiceAccount, so the runtime reads its credentials without a copy."""
    metadata = {"name": name, "namespace": kafka_namespace, "labels": labels}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": dict(metadata),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": sorted(set(secrets)),
                "verbs": ["get"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": dict(metadata),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": service_account,
                "namespace": service_account_namespace,
            }
        ],
    }
    return role, binding
