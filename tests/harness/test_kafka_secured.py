"""The secured broker: SASL/SCRAM-SHA-512 in front, the StandardAuthorizer behind it."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from tests.services.base import ServiceError
from tests.services.kafka import KafkaBroker, admin, create_topics, create_user, grant, read_topic

pytestmark = pytest.mark.integration


def produce_one(broker: KafkaBroker, topic: str, **overrides: object) -> KafkaError | None:
    """Produces one record; the delivery error, or ``None`` once it is written."""
    errors: list[KafkaError] = []
    producer = Producer(
        broker.client_config(**{"message.timeout.ms": 10_000, "log_level": 0, **overrides})
    )
    producer.produce(
        topic, value=b"x", on_delivery=lambda error, _: errors.append(error) if error else None
    )
    remaining = producer.flush(15)
    if remaining:
        return KafkaError(KafkaError._MSG_TIMED_OUT)
    return errors[0] if errors else None


def test_a_client_without_credentials_is_refused(kafka_secured: KafkaBroker) -> None:
    plain = {"security.protocol": "PLAINTEXT", "log_level": 0}
    anonymous = admin(kafka_secured, **plain)
    with pytest.raises(KafkaException) as refused:
        anonymous.describe_cluster(request_timeout=5).result(timeout=10)
    assert refused.value.args[0].code() in {KafkaError._TRANSPORT, KafkaError._TIMED_OUT}

    wrong = kafka_secured.as_user("admin", "not-the-password")
    with pytest.raises(KafkaException) as denied:
        admin(wrong, log_level=0).list_topics(timeout=10)
    assert denied.value.args[0].code() in {KafkaError._AUTHENTICATION, KafkaError._TRANSPORT}


def test_a_user_can_do_only_what_an_acl_allows(kafka_secured: KafkaBroker) -> None:
    topic = f"secured.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_secured, [topic])
    user = create_user(kafka_secured, f"u-{uuid.uuid4().hex[:8]}")

    # Authenticated, but no ACL: the broker says so, naming the topic.
    error = produce_one(user, topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert user.username is not None and topic not in admin(user).list_topics(timeout=10).topics

    grant(
        kafka_secured,
        [
            AclBinding(
                ResourceType.TOPIC,
                topic,
                ResourcePatternType.LITERAL,
                f"User:{user.username}",
                "*",
                operation,
                AclPermissionType.ALLOW,
            )
            for operation in (AclOperation.WRITE, AclOperation.DESCRIBE)
        ],
    )

    assert produce_one(user, topic) is None
    assert [r.value() for r in read_topic(kafka_secured, topic)] == [b"x"]
    # Writing is all it may do: reading the topic back as the user is still refused.
    with pytest.raises(ServiceError, match=rf"{topic}.*(?i:authoriz)"):
        read_topic(user, topic, timeout=15)
