"""The operator's configuration: every knob is an environment variable and a flag.

The Helm chart sets the environment variables; a flag of the same name (``--kafka-namespace``
for ``CHORUS_KAFKA_NAMESPACE``) overrides the variable, for running the operator by hand.

- ``CHORUS_NAMESPACES``: comma-separated namespaces to watch; empty (default): every namespace.
- ``CHORUS_KAFKA_CLUSTER``: the Strimzi ``Kafka`` resource's name, the ``strimzi.io/cluster``
  label of topics and users (``chorus``).
- ``CHORUS_KAFKA_NAMESPACE``: where the Kafka cluster, KafkaTopics and KafkaUsers live
  (``kafka``).
- ``CHORUS_KAFKA_BOOTSTRAP_SERVERS``: what agents and Flink jobs connect to (default
  ``<cluster>-kafka-bootstrap.<kafka namespace>.svc:9092``, ``:9093`` with TLS).
- ``CHORUS_KAFKA_TLS``: whether that listener speaks TLS (``false``).
- ``CHORUS_KAFKA_AUTHENTICATION``: ``none`` (default), ``scram-sha-512`` or ``tls``.
- ``CHORUS_KAFKA_AUTHORIZATION``: whether the cluster enforces ACLs (``false``).
- ``CHORUS_TOPIC_REPLICAS``: replication factor of the topics the operator makes (``1``).
- ``CHORUS_AGENT_IMAGE``: the default agent runtime image.
- ``CHORUS_FLINK_IMAGE``: the PyFlink image of stream jobs.
- ``CHORUS_FLINK_SERVICE_ACCOUNT``: the ServiceAccount FlinkDeployments run as (``flink``).
- ``CHORUS_TOPIC_DELETION_POLICY``: ``retain`` (default: Kafka keeps an Agent's topics when
  the Agent goes) or ``delete``.
- ``CHORUS_METRICS_PORT``: Prometheus metrics port, ``/metrics`` (``9090``; 0: off).
- ``CHORUS_HEALTH_PORT``: liveness endpoint port, ``/healthz`` (``8080``; 0: off).
- ``CHORUS_PEERING_NAME``: the ClusterKopfPeering (KopfPeering when namespaced) through
  which replicas elect one active operator (``chorus-operator``).
- ``CHORUS_STANDALONE``: run without peering, for a single replica (``false``).
- ``CHORUS_PEERING_PRIORITY``: this replica's priority among its peers: the highest acts,
  the others stand by (default 0: a random priority, so replicas never tie).
- ``CHORUS_RECHECK_INTERVAL``: seconds between periodic re-reconciles (``60``).
- ``CHORUS_DISCOVERY_INTERVAL``: seconds between MCP ``tools/list`` probes (``60``).
- ``CHORUS_MAX_CONCURRENT_RECONCILES``: how many reconciles run at once (``16``); the
  rest wait in arrival order. The API client's connection pool (100) exceeds it.
- ``CHORUS_API_TIMEOUT``: seconds one Kubernetes API request may take (``30``).
- ``CHORUS_LOG_LEVEL``: ``DEBUG``, ``INFO`` (default), ``WARNING``, ``ERROR``.
- ``CHORUS_LOG_FORMAT``: ``json`` (default) or ``console``.
- ``CHORUS_KUBECONFIG`` (or ``KUBECONFIG``): a kubeconfig file; the in-cluster service
  account when unset.

"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chorus_operator.model.inputs import OperatorSettings

ENV_PREFIX = "CHORUS_"


class SettingsError(ValueError):
    """A setting has a value the operator cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the operator process is configured with (see the module docstring)."""

    namespaces: tuple[str, ...] = ()
    """Watched namespaces; empty means every namespace."""
    kafka_cluster: str = "chorus"
    kafka_namespace: str = "kafka"
    kafka_bootstrap_servers: str = ""
    """Empty means the Strimzi default, ``<cluster>-kafka-bootstrap.<namespace>.svc:9092``."""
    kafka_tls: bool = False
    kafka_authentication: str = "none"
    kafka_authorization: bool = False
    topic_replicas: int = 1
    agent_image: str = "ghcr.io/chorus-dev/chorus-agent:0.1.0"
    flink_image: str = "ghcr.io/chorus-dev/chorus-flink:0.1.0"
    flink_service_account: str = "flink"
    topic_deletion_policy: str = "retain"
    metrics_port: int = 9090
    health_port: int = 8080
    peering_name: str = "chorus-operator"
    standalone: bool = False
    peering_priority: int = 0
    """This replica's peering priority; the highest active replica acts. 0: random."""
    recheck_interval: float = 60.0
    discovery_interval: float = 60.0
    max_concurrent_reconciles: int = 16
    api_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: str = "json"
    kubeconfig: str | None = None
    """A kubeconfig file; ``None`` uses ``KUBECONFIG`` or the in-cluster service account."""

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap servers agents use, explicit or derived from the Strimzi cluster."""
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        port = 9093 if self.kafka_tls else 9092
        return f"{self.kafka_cluster}-kafka-bootstrap.{self.kafka_namespace}.svc:{port}"

    @property
    def clusterwide(self) -> bool:
        """Whether the operator watches every namespace."""
        return not self.namespaces

    def to_model(self) -> OperatorSettings:
        """The part of the settings the model layer builds children from."""
        first = self.bootstrap_servers.split(",")[0]
        port = first.rsplit(":", 1)[-1]
        auth = self.kafka_authentication
        return OperatorSettings(
            agent_image=self.agent_image,
            flink_image=self.flink_image,
            kafka_cluster=self.kafka_cluster,
            kafka_namespace=self.kafka_namespace,
            bootstrap_servers=self.bootstrap_servers,
            kafka_port=int(port) if port.isdigit() else 9092,
            kafka_tls=self.kafka_tls,
            kafka_authentication=None if auth == "none" else auth,  # type: ignore[arg-type]
            kafka_authorization=self.kafka_authorization,
            flink_service_account=self.flink_service_account,
            topic_deletion_policy=self.topic_deletion_policy,  # type: ignore[arg-type]
            topic_replicas=self.topic_replicas,
            watch_namespaces=self.namespaces,
        )


_CHOICES: Mapping[str, tuple[str, ...]] = {
    "kafka_authentication": ("none", "scram-sha-512", "tls"),
    "topic_deletion_policy": ("retain", "delete"),
    "log_format": ("json", "console"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_name(field: str) -> str:
    """The environment variable of a setting: ``kafka_namespace`` -> ``CHORUS_KAFKA_NAMESPACE``."""
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    """The command-line flag of a setting: ``kafka_namespace`` -> ``--kafka-namespace``."""
    return "--" + field.replace("_", "-")


def _convert(field: dataclasses.Field[Any], raw: str, source: str) -> Any:
    kind = str(field.type)
    value: Any
    try:
        if field.name == "namespaces":
            value = tuple(part.strip() for part in raw.split(",") if part.strip())
        elif kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            value = lowered in _TRUE
        elif kind == "int":
            value = int(raw)
            if field.name.endswith("_port") and not 0 <= value <= 65535:
                raise ValueError("expected a port number, 0 to 65535")
            if not field.name.endswith(("_port", "_priority")) and value < 1:
                raise ValueError("expected a positive whole number")
        elif kind == "float":
            value = float(raw)
            if value <= 0:
                raise ValueError("expected a positive number of seconds")
        elif field.name == "kubeconfig":
            value = raw or None
        else:
            value = raw.strip()
    except ValueError as exc:
        raise SettingsError(f"{source}={raw!r}: {exc}") from None
    choices = _CHOICES.get(field.name)
    if choices is not None:
        if field.name == "log_level":
            value = value.upper()
        if value not in choices:
            raise SettingsError(f"{source}={raw!r}: expected one of {', '.join(choices)}")
    return value


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Settings from ``environ`` (``CHORUS_*``), then ``overrides`` (flag values, by field name).

    Raises :class:`SettingsError` naming the variable or flag whose value is unusable.
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        name = env_name(field.name)
        if name in environ:
            values[field.name] = _convert(field, environ[name], name)
        if field.name == "kubeconfig" and "KUBECONFIG" in environ and "kubeconfig" not in values:
            values["kubeconfig"] = environ["KUBECONFIG"] or None
        override = (overrides or {}).get(field.name)
        if override is not None:
            values[field.name] = _convert(field, override, flag_name(field.name))
    return Settings(**values)


def argument_parser() -> argparse.ArgumentParser:
    """The ``chorus-operator`` command line: one flag per setting, each overriding its variable."""
    parser = argparse.ArgumentParser(
        prog="chorus-operator",
        description="Reconciles Chorus Agent and Tool resources. Every flag can also be set "
        "as an environment variable: --kafka-namespace is CHORUS_KAFKA_NAMESPACE.",
    )
    for field in dataclasses.fields(Settings):
        help_text = f"(env {env_name(field.name)})"
        if field.name == "kubeconfig":
            help_text = f"(env {env_name(field.name)} or KUBECONFIG)"
        parser.add_argument(flag_name(field.name), dest=field.name, default=None, help=help_text)
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings from the environment and the command line ``argv`` (without the program name)."""
    namespace = argument_parser().parse_args(list(argv))
    return load_settings(environ, vars(namespace))
