"""Kafka plumbing the runtime shares: client settings from the runtime config, reading a topic.

Secrets are read from their files here, at the moment a client is built, and never
logged: :func:`client_config` is the only place the SASL password exists in memory
outside librdkafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
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


def security_config(
    protocol: str,
    *,
    sasl_mechanism: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> dict[str, Any]:
    """The librdkafka security settings: the one mapping runtime and test clients share.

    ``SASL_*`` needs the mechanism, user and password; ``ca_file`` verifies the brokers
    (``SSL``/``SASL_SSL``; the system CAs when omitted); ``cert_file`` with ``key_file``
    is the client's certificate (mTLS, Strimzi's ``tls`` KafkaUser authentication).
    """
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        if not (sasl_mechanism and username and password is not None):
            raise CredentialsError(f"{protocol} needs a SASL mechanism, a user and a password")
        config["sasl.mechanism"] = sasl_mechanism
        config["sasl.username"] = username
        config["sasl.password"] = password
    if ca_file:
        config["ssl.ca.location"] = ca_file
    if bool(cert_file) != bool(key_file):
        raise CredentialsError("a client certificate needs both its certificate and its key file")
    if cert_file and key_file:
        config["ssl.certificate.location"] = cert_file
        config["ssl.key.location"] = key_file
    return config


SecretReader = Callable[[Any], str]
"""Reads a ``SecretKeySelector`` (namespace, name, key) through the Kubernetes API."""


def client_config(
    connection: KafkaConnection, *, secrets: SecretReader | None = None, **overrides: Any
) -> dict[str, Any]:
    """librdkafka settings for ``connection`` (TLS, SASL/SCRAM from the KafkaUser secret).

    Each credential comes from its file, read now, or else from its Secret reference
    through ``secrets`` (PEM contents then go to librdkafka's ``ssl.*.pem`` settings).
    The password is never logged; the returned dict holds it, so do not log that either.
    """
    sasl = connection.security_protocol in {
        SecurityProtocol.SASL_PLAINTEXT,
        SecurityProtocol.SASL_SSL,
    }

    def from_secret(field: str) -> str | None:
        selector = getattr(connection, f"{field}_secret", None)
        if selector is None:
            return None
        if secrets is None:
            raise CredentialsError(
                f"kafka.{field}Secret {selector.namespace}/{selector.name}: no reader for "
                "Secrets given (the runtime reads them through the Kubernetes API)"
            )
        return secrets(selector)

    password = None
    if sasl:
        password = (
            _secret(connection.password_file, "SASL password")
            if connection.password_file
            else from_secret("password")
        )
    config = {
        "bootstrap.servers": connection.bootstrap_servers,
        **security_config(
            connection.security_protocol.value,
            sasl_mechanism=connection.sasl_mechanism.value if connection.sasl_mechanism else None,
            username=connection.username,
            password=password,
            ca_file=connection.ca_file,
            cert_file=connection.cert_file,
            key_file=connection.key_file,
        ),
    }
    for field, setting in (("ca", "ssl.ca.pem"), ("cert", "ssl.certificate.pem")):
        if not getattr(connection, f"{field}_file", None):
            pem = from_secret(field)
            if pem is not None:
                config[setting] = pem
    if not connection.key_file:
        pem = from_secret("key")
        if pem is not None:
            config["ssl.key.pem"] = pem
    return {**config, **overrides}


Record = tuple[bytes | None, bytes | None, Any]
"""A record's key, value and headers."""


def helper_group(topic: str, role: str) -> str:
    """A throwaway consumer group for a reader of ``topic`` that never commits.

    For an agent's own topic (``chorus.<ns>.<agent>.<kind>``) it is
    ``chorus.<ns>.<agent>.<kind>-<role>-<random>``: under the ``chorus.<ns>.<agent>.``
    prefix the agent's KafkaUser may use (see the operator's ``agent_acls``).
    """
    suffix = f"{role}-{uuid.uuid4().hex[:12]}"
    if topic.startswith("chorus.") and topic.count(".") == 3:
        return f"{topic}-{suffix}"
    return f"chorus-{suffix}"


def read_to_end(
    kafka_config: Mapping[str, Any],
    topic: str,
    *,
    timeout: float = 60.0,
    group: str | None = None,
) -> list[Record]:
    """Every committed record of ``topic``, from the beginning to the current end.

    Blocking (call it in a thread). The end of each partition is its last stable
    offset, so an open transaction is not waited for. No offsets are committed, and no
    group is joined: the partitions are assigned, so a user without rights on the
    group (``group``, default :func:`helper_group`) still reads; librdkafka's lookup
    of the group's coordinator may then fail, which is ignored.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **kafka_config,
            "group.id": group or helper_group(topic, "reader"),
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
                elif error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                    raise RuntimeError(f"topic {topic}: {error}")
        return records
    finally:
        consumer.close()
