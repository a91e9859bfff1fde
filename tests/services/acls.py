"""Strimzi ``spec.authorization.acls`` applied to the secured test broker as Strimzi's user
operator applies them: one Admin API binding per operation, principal ``User:<name>``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import (  # not re-exported for type checkers
    ResourcePatternType,
    ResourceType,
)

from tests.services.kafka import KafkaBroker, create_user, grant

RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}


def acl_bindings(user: str, acls: Iterable[Mapping[str, Any]]) -> list[AclBinding]:
    """Strimzi ACL entries as Admin API bindings, one per operation (host ``*``)."""
    bindings = []
    for acl in acls:
        resource = acl["resource"]
        kind = resource["type"]
        for operation in acl["operations"]:
            bindings.append(
                AclBinding(
                    RESOURCE_TYPES[kind],
                    "kafka-cluster" if kind == "cluster" else resource["name"],
                    PATTERNS[resource.get("patternType", "literal")],
                    f"User:{user}",
                    acl.get("host", "*"),
                    AclOperation[_snake(operation)],
                    AclPermissionType.ALLOW
                    if acl.get("type", "allow") == "allow"
                    else AclPermissionType.DENY,
                )
            )
    return bindings


def _snake(operation: str) -> str:
    """``DescribeConfigs`` -> ``DESCRIBE_CONFIGS``."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(operation)).upper()


def user_with_acls(
    secured: KafkaBroker, username: str, acls: Iterable[Mapping[str, Any]]
) -> KafkaBroker:
    """A SCRAM user (as for a KafkaUser) with exactly ``acls`` (Strimzi entries): the broker
    as that user."""
    user = create_user(secured, username)
    grant(secured, acl_bindings(username, acls))
    return user
