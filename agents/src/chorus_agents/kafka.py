"""Kafka plumbing the runtime shares: client settings from the runtime config, reading a topic.

Secrets are read from their files here, at the moment a client is built, and never
logged: :func:`client_config` is the only place the SASL password exists in memory
outside librdkafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chorus_api.runtime import KafkaConnection, SecurityProtocol


class CredentialsError(RuntimeError):
    """A credential file named by the runtime config cannot be read."""


def _secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialsError(f"{what} file {path}: {exc.strerror or exc}") from None


def client_config(connection: KafkaConnection, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings for ``connection`` (TLS, SASL/SCRAM from the KafkaUser secret)."""
    config: dict[str, Any] = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol.value,
    }
    if connection.security_protocol in {SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL}:
        assert connection.sasl_mechanism and connection.username and connection.password_file
        config["sasl.mechanism"] = connection.sasl_mechanism.value
        config["sasl.username"] = connection.username
        config["sasl.password"] = _secret(connection.password_file, "SASL password")
    if connection.ca_file:
        config["ssl.ca.location"] = connection.ca_file
    if connection.cert_file and connection.key_file:
        config["ssl.certificate.location"] = connection.cert_file
        config["ssl.key.location"] = connection.key_file
    return {**config, **overrides}


Record = tuple[bytes | None, bytes | None, Any]
"""A record's key, value and headers."""


def read_to_end(
    kafka_config: Mapping[str, Any], topic: str, *, timeout: float = 60.0
) -> list[Record]:
    """Every committed record of ``topic``, from the beginning to the current end.

    Blocking (call it in a thread). The end of each partition is its last stable
    offset, so an open transaction is not waited for. No offsets are committed.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **kafka_config,
            "group.id": f"chorus-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {topic}: {metadata.error}")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, records = set(partitions), []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic}: not read to the end in {timeout:.0f}s")
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is None:
                    records.append((message.key(), message.value(), message.headers()))
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise RuntimeError(f"topic {topic}: {error}")
        return records
    finally:
        consumer.close()
