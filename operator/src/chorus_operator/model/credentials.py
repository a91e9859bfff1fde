"""How an agent's pod gets its Kafka and model credentials, without a secret value ever
appearing in a ConfigMap, an annotation or a status.

Strimzi writes a KafkaUser's Secret (and the cluster CA's) in the Kafka namespace. A pod
mounts only Secrets of its own namespace, and the operator never copies a Secret. So:

- same namespace: the Secrets are mounted as files and the runtime config names the files;
- another namespace: a Role in the Kafka namespace grants the agent's ServiceAccount
  ``get`` on exactly those Secrets, and the runtime config names them
  (``passwordSecret``, ``caSecret``, ...); the runtime reads them through the API at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chorus_api.runtime import (
    KafkaConnection,
    SaslMechanism,
    SecretKeySelector,
    SecurityProtocol,
)

from chorus_operator.model.access import cluster_ca_secret
from chorus_operator.model.inputs import OperatorSettings

SECRETS_DIR = "/etc/chorus/secrets"
KAFKA_USER_DIR = f"{SECRETS_DIR}/kafka-user"
KAFKA_CA_DIR = f"{SECRETS_DIR}/kafka-ca"


@dataclass(frozen=True)
class PodCredentials:
    """Volumes and mounts to add to the agent's pod, and the Secrets it reads via the API."""

    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    api_secrets: tuple[str, ...] = field(default=())
    """Names of Secrets in the Kafka namespace the ServiceAccount must be able to ``get``."""


def security_protocol(settings: OperatorSettings) -> SecurityProtocol:
    """The client protocol the listener's TLS and authentication settings call for."""
    if settings.kafka_authentication == "scram-sha-512":
        return SecurityProtocol.SASL_SSL if settings.kafka_tls else SecurityProtocol.SASL_PLAINTEXT
    if settings.kafka_authentication == "tls" or settings.kafka_tls:
        return SecurityProtocol.SSL
    return SecurityProtocol.PLAINTEXT


def kafka_credentials(
    settings: OperatorSettings, *, user: str, remote: bool
) -> tuple[KafkaConnection, PodCredentials]:
    """The runtime's Kafka connection for KafkaUser ``user``, and what the pod needs for it."""
    protocol = security_protocol(settings)
    tls = protocol in {SecurityProtocol.SSL, SecurityProtocol.SASL_SSL}
    ca = cluster_ca_secret(settings.kafka_cluster)
    fields: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": protocol,
    }
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    api_secrets: list[str] = []
    user_keys: dict[str, str] = {}
    if settings.kafka_authentication == "scram-sha-512":
        fields["sasl_mechanism"] = SaslMechanism.SCRAM_SHA_512
        fields["username"] = user
        user_keys = {"password": "password"}
    elif settings.kafka_authentication == "tls":
        user_keys = {"cert": "user.crt", "key": "user.key"}
    ca_keys = {"ca": "ca.crt"} if tls else {}

    def selector(name: str, key: str) -> SecretKeySelector:
        return SecretKeySelector(namespace=settings.kafka_namespace, name=name, key=key)

    for role, key in user_keys.items():
        if remote:
            fields[f"{role}_secret"] = selector(user, key)
        else:
            fields[f"{role}_file"] = f"{KAFKA_USER_DIR}/{key}"
    for role, key in ca_keys.items():
        if remote:
            fields[f"{role}_secret"] = selector(ca, key)
        else:
            fields[f"{role}_file"] = f"{KAFKA_CA_DIR}/{key}"
    if user_keys:
        if remote:
            api_secrets.append(user)
        else:
            volumes.append(_secret_volume("kafka-user", user, user_keys.values()))
            mounts.append(_mount("kafka-user", KAFKA_USER_DIR))
    if ca_keys:
        if remote:
            api_secrets.append(ca)
        else:
            volumes.append(_secret_volume("kafka-ca", ca, ca_keys.values()))
            mounts.append(_mount("kafka-ca", KAFKA_CA_DIR))
    return KafkaConnection(**fields), PodCredentials(
        tuple(volumes), tuple(mounts), tuple(sorted(api_secrets))
    )


def secret_file_volume(
    volume: str, secret: str, key: str, directory: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A volume with one key of a Secret of the pod's namespace, its mount, and the file."""
    return _secret_volume(volume, secret, [key]), _mount(volume, directory), f"{directory}/{key}"


def _secret_volume(volume: str, secret: str, keys: Any) -> dict[str, Any]:
    return {
        "name": volume,
        "secret": {
            "secretName": secret,
            "items": [{"key": key, "path": key} for key in sorted(keys)],
            "defaultMode": 0o440,
        },
    }


def _mount(volume: str, path: str) -> dict[str, Any]:
    return {"name": volume, "mountPath": path, "readOnly": True}
