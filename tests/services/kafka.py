"""The test Kafka broker (plain and secured): re-exported from the product's own service.

``chorus dev up`` runs the same broker, so the code (and the pinned pom, as package data)
lives in :mod:`chorus_agents.dev.services.kafka`; this module keeps the tests' import path.
"""

from __future__ import annotations

from chorus_agents.dev.services.kafka import (
    ADMIN,
    BROKER_MAIN,
    FORMAT_JVM_OPTS,
    JVM_OPTS,
    POM,
    SCRAM,
    STORAGE_TOOL,
    Isolation,
    KafkaBroker,
    KafkaService,
    SecuredKafkaService,
    admin,
    cluster_id,
    create_topics,
    create_user,
    grant,
    healthy,
    read_topic,
    resolve_maven_jars,
    server_properties,
)

__all__ = [
    "ADMIN",
    "BROKER_MAIN",
    "FORMAT_JVM_OPTS",
    "JVM_OPTS",
    "POM",
    "SCRAM",
    "STORAGE_TOOL",
    "Isolation",
    "KafkaBroker",
    "KafkaService",
    "SecuredKafkaService",
    "admin",
    "cluster_id",
    "create_topics",
    "create_user",
    "grant",
    "healthy",
    "read_topic",
    "resolve_maven_jars",
    "server_properties",
]
