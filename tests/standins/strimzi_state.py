"""What the Strimzi stand-in writes, as Strimzi's operators write it (pure).

Statuses (``Ready`` conditions with ``observedGeneration``), the ``Kafka``'s listeners, the
topic a ``KafkaTopic`` asks for, and the Secret Strimzi's user operator writes for a SCRAM
``KafkaUser``. The I/O is :mod:`tests.standins.strimzi`'s.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STRIMZI_GROUP = "kafka.strimzi.io"
STRIMZI_VERSION = "v1"
CLUSTER_LABEL = "strimzi.io/cluster"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def condition(status: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    """A ``Ready`` condition as Strimzi writes it."""
    found: dict[str, Any] = {
        "type": "Ready",
        "status": status,
        "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if reason is not None:
        found["reason"] = reason
    if message is not None:
        found["message"] = message
    return found


def ready(generation: int | None, **fields: Any) -> dict[str, Any]:
    return {"conditions": [condition("True")], "observedGeneration": generation, **fields}


def not_ready(generation: int | None, reason: str, message: str) -> dict[str, Any]:
    return {"conditions": [condition("False", reason, message)], "observedGeneration": generation}


def kafka_status(
    spec: Mapping[str, Any], generation: int | None, bootstrap: str, cluster_id: str
) -> dict[str, Any]:
    """A ready ``Kafka``: every listener the spec names reached at ``bootstrap`` (the one
    harness broker serves them all)."""
    host, _, port = bootstrap.rpartition(":")
    listeners = [
        {
            "name": str(listener.get("name")),
            "addresses": [{"host": host, "port": int(port)}],
            "bootstrapServers": bootstrap,
        }
        for listener in (spec.get("kafka") or {}).get("listeners") or ()
    ]
    return ready(generation, listeners=listeners, clusterId=cluster_id)


class TopicRefused(ValueError):
    """A ``KafkaTopic`` Strimzi would not apply; ``reason`` is its condition's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TopicPlan:
    """The topic a ``KafkaTopic`` asks for, on a cluster of ``brokers`` brokers."""

    name: str
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)


def topic_plan(
    name: str, spec: Mapping[str, Any], brokers: int, existing_partitions: int | None
) -> TopicPlan:
    """What to make of ``spec`` (``topicName`` overrides the resource's name); a partition
    decrease is refused as Strimzi's topic operator refuses it."""
    topic = str(spec.get("topicName") or name)
    partitions = int(spec.get("partitions") or 1)
    if existing_partitions is not None and partitions < existing_partitions:
        raise TopicRefused(
            "NotSupported",
            f"Decreasing partitions not supported: topic {topic} has {existing_partitions}",
        )
    replicas = min(int(spec.get("replicas") or 1), brokers)
    config = {
        str(k): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in (spec.get("config") or {}).items()
    }
    return TopicPlan(topic, partitions, replicas, config)


def user_secret(
    user: str, namespace: str, cluster: str, password: str, owner: Mapping[str, Any]
) -> dict[str, Any]:
    """The Secret Strimzi's user operator writes for a SCRAM-SHA-512 ``KafkaUser``: named as
    the user, ``password`` and ``sasl.jaas.config``, labelled, owned by the KafkaUser."""
    jaas = f'{SCRAM_LOGIN} required username="{user}" password="{password}";'

    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": user,
            "namespace": namespace,
            "labels": {
                CLUSTER_LABEL: cluster,
                "strimzi.io/kind": "KafkaUser",
                "app.kubernetes.io/managed-by": "strimzi-user-operator",
            },
            "ownerReferences": [
                {
                    "apiVersion": f"{STRIMZI_GROUP}/{STRIMZI_VERSION}",
                    "kind": "KafkaUser",
                    "name": owner["name"],
                    "uid": owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "type": "Opaque",
        "data": {"password": encoded(password), "sasl.jaas.config": encoded(jaas)},
    }
