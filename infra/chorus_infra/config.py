"""Stack configuration: the typed model of the ``chorus:`` keys, checked once before anything runs.

``load_config`` turns the raw keys (``environment``, ``domains``, ``kafka``, ``flink``,
``operator``, ``gitops``) into a frozen ``StackConfig`` or raises ``ConfigError`` listing every
problem, each under the config key that causes it (``chorus:kafka.replication.factor: ...``).
The pinned chart versions and the Kafka versions the pinned Strimzi supports live here and
nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from chorus_infra.quantity import parse_quantity, positive_quantity

# --- pins --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart at an exact version in its upstream repository."""

    chart: str
    version: str
    repo: str


STRIMZI = ChartPin("strimzi-kafka-operator", "1.2.0", "https://strimzi.io/charts/")
CERT_MANAGER = ChartPin("cert-manager", "v1.20.2", "https://charts.jetstack.io")
FLINK_OPERATOR = ChartPin(
    "flink-kubernetes-operator",
    "1.15.0",
    "https://downloads.apache.org/flink/flink-kubernetes-operator-1.15.0/",
)
ARGO_CD = ChartPin("argo-cd", "9.5.22", "https://argoproj.github.io/argo-helm")

# The Kafka versions Strimzi 1.2.x runs, with the KRaft metadata version of each: Strimzi
# supports the two newest minor lines (its kafka-versions.yaml; 1.2.0 added 4.3.1).
KAFKA_VERSIONS: Mapping[str, str] = {
    "4.2.0": "4.2-IV1",
    "4.2.1": "4.2-IV1",
    "4.3.0": "4.3-IV0",
    "4.3.1": "4.3-IV0",
}
DEFAULT_KAFKA_VERSION = "4.3.1"

NAMESPACE = "chorus"
"""The Pulumi config namespace: every key is ``chorus:<key>``."""

KEYS = ("environment", "domains", "kafka", "flink", "operator", "gitops")

# --- field types -------------------------------------------------------------------------

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DnsLabel = Annotated[str, Field(pattern=_DNS_LABEL)]
Quantity = Annotated[str, AfterValidator(positive_quantity)]


class Model(BaseModel):
    """Config keys are camelCase like the Kubernetes fields they feed; unknown keys fail."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Compute(Model):
    cpu: Quantity
    memory: Quantity


class Resources(Model):
    """Requests and limits of one container; both are required, so every workload has limits."""

    requests: Compute
    limits: Compute

    def manifest(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.requests.cpu, "memory": self.requests.memory},
            "limits": {"cpu": self.limits.cpu, "memory": self.limits.memory},
        }


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str | None = None) -> Resources:
    """Requests and limits; memory limit defaults to the request (memory is not compressible)."""
    return Resources(
        requests=Compute(cpu=cpu, memory=memory),
        limits=Compute(cpu=cpu_limit, memory=memory_limit or memory),
    )


# --- kafka -------------------------------------------------------------------------------

NodeRole = Literal["controller", "broker"]
ListenerType = Literal[
    "internal", "cluster-ip", "nodeport", "loadbalancer", "ingress", "route", "tlsroute"
]
PRIVATE_LISTENER_TYPES = frozenset({"internal", "cluster-ip"})
# Strimzi keeps 9090/9091 for replication and the control plane, 9404 for metrics and
# 9999 for JMX; user listeners start at 9092.
RESERVED_PORTS = frozenset({9404, 9999})


class Storage(Model):
    """``ephemeral`` (emptyDir with a size limit) or ``persistent-claim`` (a PVC per node)."""

    type: Literal["ephemeral", "persistent-claim"]
    size: Quantity
    storage_class: str | None = Field(default=None, alias="class")
    delete_claim: bool = False


class NodePool(Model):
    name: DnsLabel
    roles: list[NodeRole] = Field(min_length=1)
    replicas: int = Field(ge=1)
    storage: Storage
    resources: Resources


class Listener(Model):
    name: str = Field(pattern=r"^[a-z0-9]{1,11}$")
    port: int = Field(ge=9092, le=65535)
    type: ListenerType = "internal"
    tls: bool
    authentication: Literal["scram-sha-512", "tls"] | None = None

    @property
    def public(self) -> bool:
        """Reachable from outside the Kubernetes cluster."""
        return self.type not in PRIVATE_LISTENER_TYPES


class Authorization(Model):
    type: Literal["simple"]
    super_users: list[str] = Field(default_factory=list)


class Replication(Model):
    factor: int = Field(ge=1)
    min_insync_replicas: int = Field(ge=1)


class Rack(Model):
    topology_key: str = Field(default="topology.kubernetes.io/zone", min_length=1)


class Disruption(Model):
    max_unavailable: int = Field(ge=0)


class KafkaConfig(Model):
    cluster_name: DnsLabel = "chorus"
    namespace: DnsLabel = "kafka"
    version: str = DEFAULT_KAFKA_VERSION
    metadata_version: str | None = None
    listeners: list[Listener] = Field(min_length=1)
    client_listener: str | None = None
    authorization: Authorization | None = None
    replication: Replication
    node_pools: list[NodePool] = Field(min_length=1)
    rack: Rack | None = None
    pod_disruption_budget: Disruption | None = None
    metrics: bool = False
    operator_resources: Resources = resources("200m", "384Mi", "1")
    entity_operator_resources: Resources = resources("100m", "256Mi", "500m")
    exporter_resources: Resources = resources("50m", "64Mi", "500m", "128Mi")

    @property
    def brokers(self) -> int:
        return sum(pool.replicas for pool in self.node_pools if "broker" in pool.roles)

    @property
    def controllers(self) -> int:
        return sum(pool.replicas for pool in self.node_pools if "controller" in pool.roles)

    @property
    def client(self) -> Listener:
        """The listener the Chorus operator and agents connect through (default: the first)."""
        wanted = self.client_listener or self.listeners[0].name
        return next((item for item in self.listeners if item.name == wanted), self.listeners[0])

    @property
    def effective_metadata_version(self) -> str:
        return self.metadata_version or KAFKA_VERSIONS.get(self.version, "")


# --- flink, operator, gitops -------------------------------------------------------------


class FlinkConfig(Model):
    operator_namespace: DnsLabel = "flink-operator"
    webhook: bool = False
    cert_manager_namespace: DnsLabel = "cert-manager"
    job_service_account: DnsLabel = "flink"
    operator_resources: Resources = resources("200m", "512Mi", "1")
    webhook_resources: Resources = resources("100m", "256Mi", "500m")
    cert_manager_resources: Resources = resources("50m", "128Mi", "500m")


class OperatorConfig(Model):
    """The Chorus operator (chart from this repository) and, optionally, the reference agents."""

    namespace: DnsLabel = "chorus-system"
    chart_path: str = "charts/chorus-operator"
    resources: Resources = resources("100m", "256Mi", "500m")
    reference_agents: bool = False


class GitOpsConfig(Model):
    enabled: bool = False
    namespace: DnsLabel = "argocd"
    repo_url: str | None = Field(
        default=None, alias="repoURL", pattern=r"^(https://|ssh://|git@)\S+$"
    )
    target_revision: str = Field(default="main", min_length=1)
    resources: Resources = resources("100m", "256Mi", "1", "512Mi")


class StackConfig(Model):
    environment: Literal["dev", "prod"]
    domains: list[DnsLabel] = Field(min_length=1)
    kafka: KafkaConfig
    flink: FlinkConfig = FlinkConfig()
    operator: OperatorConfig = OperatorConfig()
    gitops: GitOpsConfig = GitOpsConfig()

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """prod turns GitOps and the Flink admission webhook on unless the stack says otherwise."""
        if not isinstance(data, Mapping):
            return data
        prod = data.get("environment") == "prod"
        data = dict(data)
        for key, flag in (("gitops", "enabled"), ("flink", "webhook")):
            section = data.get(key, {})
            if isinstance(section, Mapping) and flag not in section:
                data[key] = {**section, flag: prod}
        return data

    @property
    def namespaces(self) -> dict[str, str]:
        """Every namespace the program creates, by the config key that names it."""
        found = {
            "kafka.namespace": self.kafka.namespace,
            "flink.operatorNamespace": self.flink.operator_namespace,
            "operator.namespace": self.operator.namespace,
        }
        if self.flink.webhook:
            found["flink.certManagerNamespace"] = self.flink.cert_manager_namespace
        if self.gitops.enabled:
            found["gitops.namespace"] = self.gitops.namespace
        for index, domain in enumerate(self.domains):
            found[f"domains[{index}]"] = domain
        return found


# --- loading and checking ----------------------------------------------------------------


class ConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` holds ``(config key, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{key}: {message}" for key, message in problems]
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(lines))


def load_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validates the ``chorus:`` keys (without their prefix); ConfigError lists every problem."""
    unknown = [f"{NAMESPACE}:{key}" for key in raw if key not in KEYS]
    if unknown:
        raise ConfigError([(key, f"unknown key (known: {', '.join(KEYS)})") for key in unknown])
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        found = [(_key(error["loc"]), _message(error)) for error in err.errors()]
        raise ConfigError(found) from None
    found = problems(config)
    if found:
        raise ConfigError(found)
    return config


def load_stack_file(path: Path, overrides: Mapping[str, Any] | None = None) -> StackConfig:
    """Loads ``Pulumi.<stack>.yaml`` as ``pulumi up`` would see it (for tests and docs tooling)."""
    document = yaml.safe_load(path.read_text()) or {}
    raw: dict[str, Any] = {}
    for full_key, value in (document.get("config") or {}).items():
        namespace, _, key = str(full_key).partition(":")
        if namespace == NAMESPACE:
            raw[key] = value
    return load_config(merge(raw, overrides or {}))


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, mappings merged key by key (like --path sets)."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def from_pulumi_config() -> StackConfig:
    """Reads every ``chorus:`` key of the running stack (structured values arrive as JSON)."""
    from pulumi.runtime import config as runtime_config

    present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for full_key, value in present.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value  # a plain string such as `dev`
    return load_config(raw)


def _key(loc: tuple[int | str, ...]) -> str:
    text = NAMESPACE + ":"
    for index, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif index == 0:
            text += part
        else:
            text += f".{part}"
    return text


def _message(error: Mapping[str, Any]) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    return message.removeprefix("Value error, ")


class Problems(list[tuple[str, str]]):
    """``(config key, message)`` pairs, in the order the checks find them."""

    def add(self, key: str, message: str) -> None:
        self.append((f"{NAMESPACE}:{key}", message))


def problems(config: StackConfig) -> list[tuple[str, str]]:
    """Cross-field rules pydantic's per-field checks cannot express; empty when all hold."""
    found = Problems()
    _check_kafka(config.kafka, found)
    if config.environment == "prod":
        _check_prod(config.kafka, found)
    _check_platform(config, found)
    return list(found)


def _check_kafka(kafka: KafkaConfig, found: Problems) -> None:
    if kafka.version not in KAFKA_VERSIONS:
        supported = ", ".join(KAFKA_VERSIONS)
        found.add(
            "kafka.version",
            f"Kafka {kafka.version} is not supported by Strimzi "
            f"{STRIMZI.version} (supported: {supported})",
        )
    elif kafka.metadata_version is not None:
        minor = ".".join(kafka.version.split(".")[:2])
        if not re.fullmatch(rf"{re.escape(minor)}-IV\d+", kafka.metadata_version):
            found.add(
                "kafka.metadataVersion",
                f"{kafka.metadata_version!r} does not match "
                f"Kafka {kafka.version} (expected {minor}-IV<n>)",
            )
    _check_unique(found, "kafka.nodePools", [pool.name for pool in kafka.node_pools])
    for index, pool in enumerate(kafka.node_pools):
        if len(set(pool.roles)) != len(pool.roles):
            found.add(f"kafka.nodePools[{index}].roles", f"{pool.roles} repeats a role")
        _check_resources(found, f"kafka.nodePools[{index}].resources", pool.resources)
    if kafka.controllers == 0:
        found.add("kafka.nodePools", "no pool has the controller role (KRaft needs one)")
    if kafka.brokers == 0:
        found.add("kafka.nodePools", "no pool has the broker role")
    factor, min_insync = kafka.replication.factor, kafka.replication.min_insync_replicas
    if kafka.brokers and factor > kafka.brokers:
        found.add(
            "kafka.replication.factor", f"{factor} is above the number of brokers ({kafka.brokers})"
        )
    if min_insync > factor:
        found.add(
            "kafka.replication.minInsyncReplicas",
            f"{min_insync} is above the replication factor ({factor})",
        )
    _check_listeners(kafka, found)
    _check_resources(found, "kafka.operatorResources", kafka.operator_resources)
    _check_resources(found, "kafka.entityOperatorResources", kafka.entity_operator_resources)
    _check_resources(found, "kafka.exporterResources", kafka.exporter_resources)


def _check_listeners(kafka: KafkaConfig, found: Problems) -> None:
    names = [item.name for item in kafka.listeners]
    _check_unique(found, "kafka.listeners", names)
    _check_unique(found, "kafka.listeners", [str(item.port) for item in kafka.listeners], "port")
    for index, item in enumerate(kafka.listeners):
        at = f"kafka.listeners[{index}]"
        if item.port in RESERVED_PORTS:
            found.add(f"{at}.port", f"{item.port} is reserved by Strimzi")
        if item.public and not item.tls:
            found.add(
                f"{at}.tls",
                f"listener {item.name!r} is reachable from outside the "
                f"cluster ({item.type}) and must use TLS",
            )
        if item.authentication == "tls" and not item.tls:
            found.add(
                f"{at}.authentication",
                f"TLS client authentication on listener {item.name!r} needs tls: true",
            )
    if kafka.client_listener is not None and kafka.client_listener not in names:
        found.add(
            "kafka.clientListener",
            f"{kafka.client_listener!r} is not a listener (listeners: {', '.join(names)})",
        )
    elif kafka.authorization is not None and kafka.client.authentication is None:
        found.add(
            "kafka.clientListener",
            f"listener {kafka.client.name!r} has no "
            "authentication, so with authorization on its clients may do nothing",
        )


def _check_prod(kafka: KafkaConfig, found: Problems) -> None:
    """What the prod stack promises: TLS + SCRAM + ACLs, 3+3 nodes, replication 3 with
    min.insync.replicas 2, zones, disruption budgets and persistent volumes."""
    for index, item in enumerate(kafka.listeners):
        if not item.tls:
            found.add(
                f"kafka.listeners[{index}].tls",
                f"prod requires TLS on every listener ({item.name!r})",
            )
        if item.authentication != "scram-sha-512":
            found.add(
                f"kafka.listeners[{index}].authentication",
                f"prod requires scram-sha-512 on every listener ({item.name!r})",
            )
    if kafka.authorization is None:
        found.add("kafka.authorization", "prod requires authorization (type: simple)")
    if kafka.brokers < 3:
        found.add("kafka.nodePools", f"prod requires 3 or more brokers (has {kafka.brokers})")
    if kafka.controllers < 3 or kafka.controllers % 2 == 0:
        found.add(
            "kafka.nodePools",
            f"prod requires an odd number of controllers, at least 3 (has {kafka.controllers})",
        )
    if kafka.replication.factor < 3:
        found.add("kafka.replication.factor", "prod requires replication factor 3 or more")
    if kafka.replication.min_insync_replicas < 2:
        found.add("kafka.replication.minInsyncReplicas", "prod requires 2 or more")
    if kafka.rack is None:
        found.add("kafka.rack", "prod requires rack awareness (rack.topologyKey)")
    if kafka.pod_disruption_budget is None:
        found.add("kafka.podDisruptionBudget", "prod requires a PodDisruptionBudget")
    for index, pool in enumerate(kafka.node_pools):
        if pool.storage.type != "persistent-claim":
            found.add(
                f"kafka.nodePools[{index}].storage.type",
                f"prod requires persistent-claim storage (pool {pool.name!r})",
            )


def _check_platform(config: StackConfig, found: Problems) -> None:
    _check_unique(found, "domains", config.domains)
    seen: dict[str, str] = {}
    for key, namespace in config.namespaces.items():
        if namespace in seen and seen[namespace] != key:
            found.add(key, f"namespace {namespace!r} is also {NAMESPACE}:{seen[namespace]}")
        seen.setdefault(namespace, key)
    if config.gitops.enabled and config.gitops.repo_url is None:
        found.add(
            "gitops.repoURL",
            "required when GitOps is on (prod turns it on by default): "
            "the Git repository Argo CD syncs agents/<domain>/deploy from",
        )
    if config.gitops.enabled and config.operator.reference_agents:
        found.add(
            "operator.referenceAgents",
            "Argo CD already applies agents/<domain>/deploy "
            "when GitOps is on; turn one of them off",
        )
    if Path(config.operator.chart_path).is_absolute():
        found.add("operator.chartPath", "must be relative to the repository")
    _check_resources(found, "flink.operatorResources", config.flink.operator_resources)
    _check_resources(found, "flink.webhookResources", config.flink.webhook_resources)
    _check_resources(found, "flink.certManagerResources", config.flink.cert_manager_resources)
    _check_resources(found, "operator.resources", config.operator.resources)
    _check_resources(found, "gitops.resources", config.gitops.resources)


def _check_resources(found: Problems, key: str, value: Resources) -> None:
    for field in ("cpu", "memory"):
        request, limit = getattr(value.requests, field), getattr(value.limits, field)
        if parse_quantity(limit) < parse_quantity(request):
            found.add(f"{key}.limits.{field}", f"{limit} is below the request ({request})")


def _check_unique(found: Problems, key: str, values: list[str], what: str = "name") -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            found.add(key, f"{what} {value!r} appears more than once")
        seen.add(value)
