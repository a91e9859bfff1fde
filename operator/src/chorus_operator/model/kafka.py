"""Strimzi KafkaTopics: an agent's own topics, its publish topics and its streams' outputs.

They live in the Kafka cluster's namespace (the Strimzi topic operator watches only it).
``metadata.name`` is the topic name made DNS-safe (see :func:`labels.dns_name`) and
``spec.topicName`` the real one, so ``orders_v2`` or ``Trading.Ticks`` work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_api.agent import PublishTopic
from chorus_api.common import duration_ms
from chorus_api.topics import AGENT_CARDS_TOPIC, audit_topic, own_topics

from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.labels import STRIMZI_CLUSTER_LABEL, common_labels, dns_name

KAFKA_TOPIC_API = "kafka.strimzi.io/v1"
SHARED_LABEL = "chorus.dev/shared-topic"
"""On topics no single Agent owns: the audit topic and the AgentCard registry (every agent
shares them), and every topic an Agent publishes to or a stream writes to (several Agents
may declare the same one: the four signal-control Agents of the traffic domain all publish
``traffic.signal-plans``). They carry no agent label and no owner reference, so neither
deleting an agent nor pruning ever deletes them; the first Agent that needs one creates
it, with its partitions and retention, and later declarations leave it as it is."""
OUTPUT_TOPIC = "output"
"""The :data:`SHARED_LABEL` value of publish and stream-output topics."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic to create: partitions and topic-level config (strings, as Kafka wants)."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def agent_topics(namespace: str, agent: str, *, partitions: int) -> tuple[TopicSpec, ...]:
    """The topics an agent owns, sorted by name: its own four (tasks compacted)."""
    found: dict[str, TopicSpec] = {}
    for role, name in own_topics(namespace, agent).items():
        config = {"cleanup.policy": "compact"} if role == "tasks" else {}
        found[name] = TopicSpec(name, partitions, config)
    return tuple(found[name] for name in sorted(found))


def output_topics(
    *,
    publish: Iterable[PublishTopic],
    stream_outputs: Iterable[str],
    partitions: int,
) -> tuple[TopicSpec, ...]:
    """The topics an agent writes to that others may write to too, sorted by name: its
    publish topics (partitions, retention from the spec) and its streams' outputs not
    already declared as publish topics. They are shared (see :data:`SHARED_LABEL`)."""
    found: dict[str, TopicSpec] = {}
    for entry in publish:
        found[entry.topic] = TopicSpec(
            entry.topic, entry.partitions, {"retention.ms": str(duration_ms(entry.retention))}
        )
    for name in stream_outputs:
        found.setdefault(name, TopicSpec(name, partitions))
    return tuple(found[name] for name in sorted(found))


def shared_topics(namespace: str, partitions: int) -> tuple[TopicSpec, ...]:
    """The namespace's audit topic and the installation's compacted AgentCard registry."""
    return (
        TopicSpec(AGENT_CARDS_TOPIC, 1, {"cleanup.policy": "compact"}),
        TopicSpec(audit_topic(namespace), partitions),
    )


def kafka_topic(
    topic: TopicSpec,
    settings: OperatorSettings,
    *,
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The KafkaTopic of ``topic`` in the Kafka namespace, labelled for the cluster."""
    metadata: dict[str, Any] = {
        "name": dns_name(topic.name),
        "namespace": settings.kafka_namespace,
        "labels": {**labels, STRIMZI_CLUSTER_LABEL: settings.kafka_cluster},
    }
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    spec: dict[str, Any] = {
        "topicName": topic.name,
        "partitions": topic.partitions,
        "replicas": settings.topic_replicas,
    }
    if topic.config:
        spec["config"] = dict(sorted(topic.config.items()))
    return {"apiVersion": KAFKA_TOPIC_API, "kind": "KafkaTopic", "metadata": metadata, "spec": spec}


def shared_topic_labels(kind: str) -> dict[str, str]:
    """Labels of a shared topic (no owner, no agent)."""
    return {**common_labels("chorus-platform", kind, "topic"), SHARED_LABEL: kind}
