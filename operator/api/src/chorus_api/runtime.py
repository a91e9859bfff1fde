"""The agent runtime's configuration: what one agent process needs to know to run.

The operator computes it from an Agent (and the Tools and KafkaUser it refers to) and
writes it into the agent's ConfigMap as ``runtime.yaml``; the runtime reads that file
(:func:`load_runtime_config`) and nothing else. Defined once here, so the two sides
cannot disagree on a field's name or meaning.

Secrets never appear in it: only the paths of the files they are mounted at (the
KafkaUser's password, the cluster CA, a model's API key) or the name of the
environment variable that holds one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from chorus_api.agent import Delivery, Guarantee, McpToolName, ModelPrice, Provider, Skill
from chorus_api.common import (
    PYTHON_PATH,
    ApiModel,
    ConfigKey,
    ObjectName,
    SecretName,
    TopicName,
    Url,
    duration_ms,
)
from chorus_api.rules import describe_errors, list_map, list_set, rule_error, unique_by
from chorus_api.topics import (
    AGENT_CARDS_TOPIC,
    audit_topic,
    dead_letter_topic,
    inbox_topic,
    replies_topic,
    tasks_topic,
)

CONFIG_FILE = "runtime.yaml"
"""The key of the runtime configuration in the agent's ConfigMap."""
DEFAULT_CONFIG_PATH = Path("/etc/chorus") / CONFIG_FILE
"""Where the agent's container finds the ConfigMap's ``runtime.yaml``."""

Namespace = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
"""A Kubernetes namespace name (a DNS-1123 label)."""
FilePath = Annotated[str, Field(pattern=r"^\S(.*\S)?$", min_length=1, max_length=4096)]
"""The path of a file mounted into the agent's container (a Secret key, usually)."""
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=253)]
"""The name of an environment variable."""
BOOTSTRAP_PATTERN = r"^[^\s,:]+:[0-9]{1,5}(,[^\s,:]+:[0-9]{1,5})*$"


class RuntimeConfigError(ValueError):
    """The configuration file is missing, unreadable, or breaks a rule.

    The message names the file and, for each problem, the field (``kafka.bootstrapServers``).
    """


# --- identity ------------------------------------------------------------------------------


class AgentIdentity(ApiModel):
    """Who the agent is: its names in Kafka topics, in the registry and in its AgentCard."""

    namespace: Namespace
    """The Kubernetes namespace of the Agent."""
    name: ObjectName
    """The Agent's name."""
    description: Annotated[str, Field(max_length=1024)] | None = None
    """What the agent does, for its AgentCard."""
    version: Annotated[str, Field(min_length=1, max_length=64)] = "0.1.0"
    """The version published in the AgentCard."""

    @property
    def key(self) -> str:
        """``<namespace>/<name>``: the agent's key in the registry and its ``chorus-sender``."""
        return f"{self.namespace}/{self.name}"


# --- Kafka ---------------------------------------------------------------------------------


class SecurityProtocol(StrEnum):
    """How the agent connects to the brokers (librdkafka's ``security.protocol``)."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """The SASL mechanism; a Strimzi KafkaUser with ``scram-sha-512`` authentication: the first."""

    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"


class SecretKeySelector(ApiModel):
    """A key of a Secret in any namespace, which the runtime reads through the Kubernetes API.

    Used when the Secret lives in another namespace than the agent (Strimzi makes a
    KafkaUser's Secret in the Kafka cluster's namespace, which a pod elsewhere cannot
    mount): the operator grants the agent's ServiceAccount ``get`` on exactly that Secret,
    and the runtime reads the value at start. The value is never copied.
    """

    namespace: Namespace
    """The Secret's namespace."""
    name: SecretName
    """The Secret's name."""
    key: ConfigKey
    """The key within the Secret."""


class KafkaConnection(ApiModel):
    """How to reach the Kafka cluster, and as whom.

    Each credential comes from a mounted file (``*_file``) or, when the Secret cannot be
    mounted, from a Secret read through the Kubernetes API (``*_secret``); the file wins
    when both are set.
    """

    bootstrap_servers: Annotated[str, Field(pattern=BOOTSTRAP_PATTERN, max_length=4096)]
    """``host:port`` pairs, comma-separated."""
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    """``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``."""
    sasl_mechanism: SaslMechanism | None = None
    """Required with a ``SASL_*`` protocol."""
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """The SASL user (a KafkaUser's name); required with a ``SASL_*`` protocol."""
    password_file: FilePath | None = None
    """The file holding the SASL password (the KafkaUser Secret's ``password`` key)."""
    ca_file: FilePath | None = None
    """The PEM file of the cluster CA, with ``SSL``/``SASL_SSL``; the system CAs when omitted."""
    cert_file: FilePath | None = None
    """The client certificate (PEM) for mutual TLS; with ``key_file``."""
    key_file: FilePath | None = None
    """The client key (PEM) for mutual TLS; with ``cert_file``."""
    password_secret: SecretKeySelector | None = None
    """The Secret key holding the SASL password, read through the API (instead of a file)."""
    ca_secret: SecretKeySelector | None = None
    """The Secret key holding the cluster CA (PEM), read through the API."""
    cert_secret: SecretKeySelector | None = None
    """The Secret key holding the client certificate (PEM), read through the API."""
    key_secret: SecretKeySelector | None = None
    """The Secret key holding the client key (PEM), read through the API."""

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        sasl = self.security_protocol in {
            SecurityProtocol.SASL_PLAINTEXT,
            SecurityProtocol.SASL_SSL,
        }
        tls = self.security_protocol in {SecurityProtocol.SSL, SecurityProtocol.SASL_SSL}
        has_password = self.password_file is not None or self.password_secret is not None
        if sasl:
            for field in ("sasl_mechanism", "username"):
                if getattr(self, field) is None:
                    camel = "".join(
                        p if i == 0 else p.title() for i, p in enumerate(field.split("_"))
                    )
                    raise rule_error(
                        f"required with securityProtocol {self.security_protocol}", f".{camel}"
                    )
            if not has_password:
                raise rule_error(
                    f"required with securityProtocol {self.security_protocol} (or passwordSecret)",
                    ".passwordFile",
                )
        elif self.sasl_mechanism is not None or has_password:
            raise rule_error(
                f"SASL settings need a SASL_* securityProtocol, not {self.security_protocol}",
                ".securityProtocol",
            )
        tls_sources = (self.ca_file, self.cert_file, self.key_file)
        tls_secrets = (self.ca_secret, self.cert_secret, self.key_secret)
        if not tls and (any(tls_sources) or any(s is not None for s in tls_secrets)):
            raise rule_error(
                f"TLS files need securityProtocol SSL or SASL_SSL, not {self.security_protocol}",
                ".securityProtocol",
            )
        has_cert = self.cert_file is not None or self.cert_secret is not None
        has_key = self.key_file is not None or self.key_secret is not None
        if has_cert != has_key:
            raise rule_error(
                "set certFile and keyFile together", ".keyFile" if has_cert else ".certFile"
            )
        return self


# --- topics --------------------------------------------------------------------------------


class RuntimeTopics(ApiModel):
    """Every topic the agent reads or writes. Derived from the identity when omitted."""

    inbox: TopicName
    """A2A requests to the agent."""
    replies: TopicName
    """Answers to the A2A requests the agent sends."""
    dead_letter: TopicName
    """Records the agent could not process."""
    tasks: TopicName
    """The agent's A2A tasks (compacted)."""
    audit: TopicName
    """Audit records of the namespace."""
    agent_cards: TopicName = AGENT_CARDS_TOPIC
    """The AgentCard registry (compacted)."""
    subscribe: Annotated[
        tuple[TopicName, ...],
        Field(max_length=64, json_schema_extra=list_set()),
        AfterValidator(unique_by(lambda topic: topic)),
    ] = ()
    """Domain event topics the agent consumes."""
    publish: Annotated[
        tuple[TopicName, ...],
        Field(max_length=64, json_schema_extra=list_set()),
        AfterValidator(unique_by(lambda topic: topic)),
    ] = ()
    """Domain event topics the agent may write."""


# --- delivery ------------------------------------------------------------------------------


class RuntimeDelivery(ApiModel):
    """How input records are processed (the Agent's ``delivery`` plus runtime limits)."""

    guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    """``exactly-once`` (outputs and input offsets in one transaction) or ``at-least-once``."""
    max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    """How many times a record is tried before it counts as failed."""
    dead_letter: StrictBool = True
    """Whether a failed record goes to the dead-letter topic (otherwise: logged and dropped)."""
    max_batch: Annotated[StrictInt, Field(ge=1, le=10_000)] = 100
    """Most records taken per poll."""
    max_in_flight: Annotated[StrictInt, Field(ge=1, le=10_000)] = 64
    """Most records worked on at once (records of one key run one at a time, in order)."""
    commit_interval_ms: Annotated[StrictInt, Field(ge=10, le=60_000)] = 100
    """Milliseconds between the loop's transactions."""
    handler_timeout_seconds: Annotated[float, Field(ge=1, le=86_400)] = 600.0
    """Seconds a record may take until it is finished; then it is dead-lettered."""

    @classmethod
    def of(cls, delivery: Delivery) -> RuntimeDelivery:
        """The runtime's delivery for an Agent's ``delivery`` (the one mapping of it)."""
        return cls(
            guarantee=delivery.guarantee,
            max_attempts=delivery.max_attempts,
            dead_letter=delivery.dead_letter,
            max_in_flight=delivery.max_in_flight,
            commit_interval_ms=duration_ms(delivery.commit_interval),
            handler_timeout_seconds=duration_ms(delivery.handler_timeout) / 1000,
        )

    max_record_bytes: Annotated[StrictInt, Field(ge=1024, le=100 * 1024 * 1024)] = 1024 * 1024
    """A larger input record is dead-lettered unread."""


# --- model and tools -----------------------------------------------------------------------


class RuntimeModel(ApiModel):
    """The language model the agent calls, and where its API key is."""

    provider: Provider
    """``openai`` (OpenAI or any OpenAI-compatible endpoint), ``anthropic``, ``gemini`` or
    ``scripted``."""
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """The model's name at the provider; required unless scripted."""
    endpoint: Url | None = None
    """The provider's base URL, when not its public default."""
    api_key_file: FilePath | None = None
    """The file holding the API key (a mounted Secret key); read before ``api_key_env``."""
    api_key_env: EnvName | None = None
    """The environment variable holding the API key."""
    script_file: FilePath | None = None
    """For ``scripted``: the file of its rules (YAML); without it, the model echoes."""
    script: str | None = None
    """For ``scripted``: the script itself (the Agent's ``model.script``), read before
    ``script_file``."""
    api_version: str | None = None
    """Azure OpenAI's API version: ``endpoint`` is the resource, ``name`` the deployment."""
    price: ModelPrice | None = None
    """What its tokens cost (US dollars per million), for each call's estimated cost."""

    @model_validator(mode="after")
    def _name_unless_scripted(self) -> Self:
        if self.provider != Provider.SCRIPTED and self.name is None:
            raise rule_error("name is required unless provider is scripted", ".name")
        return self


class RuntimeTool(ApiModel):
    """One MCP server the agent may use, and which of its tools."""

    name: ObjectName
    """The Tool resource's name; audit records and errors use it."""
    url: Url | None = None
    """The server's streamable HTTP endpoint."""
    command: Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(max_length=64)] = ()
    """A server started as a child process and spoken to over stdio (local mode)."""
    allow: Annotated[
        tuple[McpToolName, ...],
        Field(min_length=1, max_length=128, json_schema_extra=list_set()),
        AfterValidator(unique_by(lambda name: name)),
    ]
    """The tools the agent may call; any other is refused and audited."""
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How long one call may take."""
    bearer_token_file: FilePath | None = None
    """The file holding a bearer token for the server."""

    @model_validator(mode="after")
    def _url_xor_command(self) -> Self:
        if (self.url is None) == (not self.command):
            raise rule_error("set exactly one of url and command")
        return self


# --- HTTP ----------------------------------------------------------------------------------


class RuntimeHttp(ApiModel):
    """The agent's HTTP server: A2A JSON-RPC gateway, AgentCard, health and metrics."""

    host: Annotated[str, Field(min_length=1, max_length=253)] = "0.0.0.0"
    """The address to listen on."""
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = 8080
    """The port to listen on; 0 picks a free one (tests)."""
    public_url: Url | None = None
    """The gateway's URL as other clients reach it (its Service), for the AgentCard."""


# --- the whole configuration -----------------------------------------------------------------

_TOPIC_DEFAULTS = {
    "inbox": inbox_topic,
    "replies": replies_topic,
    "deadLetter": dead_letter_topic,
    "tasks": tasks_topic,
}


def _derived(derive: Callable[[str, str], str], namespace: str, name: str, *, suffix: str) -> str:
    try:
        return derive(namespace, name)
    except ValueError:
        # The identity is invalid and its own validation says why; a placeholder keeps
        # that the only error instead of adding "topics: Field required".
        return f"chorus.invalid.{suffix}"


class RuntimeConfig(ApiModel):
    """Everything one agent process needs; the operator writes it, the runtime reads it."""

    model_config = ConfigDict(title="ChorusRuntimeConfig")

    agent: AgentIdentity
    """Who the agent is."""
    kafka: KafkaConnection
    """How to reach Kafka."""
    topics: RuntimeTopics
    """The topics it reads and writes; each derived from ``agent`` when omitted."""
    delivery: RuntimeDelivery = Field(default_factory=RuntimeDelivery)
    """How input records are processed."""
    handler: (
        Annotated[str, Field(pattern=f"^{PYTHON_PATH}:{PYTHON_PATH}$", max_length=256)] | None
    ) = None
    """A code-defined agent, ``module:attribute``."""
    instructions: Annotated[str, Field(min_length=1, max_length=32768)] | None = None
    """The system prompt of an agent defined by instructions."""
    model: RuntimeModel | None = None
    """The language model; required when there is no handler."""
    tools: Annotated[
        tuple[RuntimeTool, ...],
        Field(max_length=32, json_schema_extra=list_map("name")),
        AfterValidator(unique_by(lambda tool: tool.name)),
    ] = ()
    """The MCP servers it may use."""
    skills: Annotated[
        tuple[Skill, ...],
        Field(max_length=64, json_schema_extra=list_map("id")),
        AfterValidator(unique_by(lambda skill: skill.id)),
    ] = ()
    """The skills published in its AgentCard."""
    http: RuntimeHttp = Field(default_factory=RuntimeHttp)
    """Its HTTP server."""
    instance: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]{1,128}$")] | None = None
    """This replica's name in its transactional id; the host name (the pod's) when omitted."""

    @model_validator(mode="before")
    @classmethod
    def _derive_topics(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        agent = data.get("agent")
        if not isinstance(agent, Mapping):
            return data
        namespace, name = agent.get("namespace"), agent.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            return data
        topics = data.get("topics")
        if topics is not None and not isinstance(topics, Mapping):
            return data
        filled = dict(topics or {})
        for key, derive in _TOPIC_DEFAULTS.items():
            snake = "dead_letter" if key == "deadLetter" else key
            if key not in filled and snake not in filled:
                filled[key] = _derived(derive, namespace, name, suffix=key)
        if "audit" not in filled:
            filled["audit"] = _derived(
                lambda ns, _: audit_topic(ns), namespace, name, suffix="audit"
            )
        return {**data, "topics": filled}

    @model_validator(mode="after")
    def _handler_or_instructions(self) -> Self:
        if self.handler is None and self.instructions is None:
            raise rule_error(
                "set handler or instructions (or both): an agent needs code or a prompt"
            )
        if self.handler is None and self.model is None:
            raise rule_error(
                "model is required when there is no handler: instructions are run by a model",
                ".model",
            )
        return self


# --- reading and writing -----------------------------------------------------------------------


def parse_runtime_config(document: Any, *, source: str = "runtime config") -> RuntimeConfig:
    """The configuration in ``document`` (a parsed JSON/YAML mapping); errors name each field."""
    if not isinstance(document, Mapping):
        raise RuntimeConfigError(
            f"{source}: expected a mapping at the top, got {type(document).__name__}"
        )
    try:
        return RuntimeConfig.model_validate(document)
    except ValidationError as exc:
        problems = "\n  ".join(describe_errors(exc))
        raise RuntimeConfigError(f"{source}: invalid:\n  {problems}") from None


def load_runtime_config(path: str | Path = DEFAULT_CONFIG_PATH) -> RuntimeConfig:
    """Reads the configuration from a JSON or YAML file (the mounted ConfigMap)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeConfigError(
            f"runtime config {path}: cannot read: {exc.strerror or exc}"
        ) from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise RuntimeConfigError(f"runtime config {path}: not valid {kind}: {exc}") from None
    return parse_runtime_config(document, source=f"runtime config {path}")


_SAFE_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter where PyYAML has it: the same text, and the operator writes one
``runtime.yaml`` per Agent reconcile (the pure-Python emitter was 6 % of its CPU at 500
Agents)."""


def runtime_config_document(config: RuntimeConfig) -> dict[str, Any]:
    """The configuration as the operator writes it: camelCase keys, no ``None``."""
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def runtime_config_yaml(config: RuntimeConfig) -> str:
    """The text of ``runtime.yaml``: stable key order, so its hash changes only with its content."""
    return yaml.dump(runtime_config_document(config), Dumper=_SAFE_DUMPER, sort_keys=True)
