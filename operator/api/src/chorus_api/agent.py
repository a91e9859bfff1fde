"""The Agent kind: an event-driven AI agent the operator runs on Kubernetes.

``Agent.model_validate(obj)`` parses a whole resource as the apiserver returns it
(``apiVersion``, ``kind``, ``metadata``, ``spec``, ``status``) and enforces every rule
the CRD enforces, so a spec the apiserver would refuse is refused here too, with the
same message and a path naming the field (see :func:`chorus_api.rules.describe_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chorus_api.common import (
    NAME_RULE,
    PYTHON_PATH,
    ApiModel,
    Condition,
    ConditionList,
    ConfigMapKeyRef,
    Duration,
    ObjectMeta,
    ObjectName,
    Phase,
    ResourceRequirements,
    SecretKeyRef,
    StatusModel,
    TopicName,
    Url,
    duration_ms,
)
from chorus_api.rules import Rule, list_map, list_set, rule_error, unique_by, validations
from chorus_api.topics import A2A_SEGMENT

# --- model -------------------------------------------------------------------------------


class Provider(StrEnum):
    """Who answers the agent's model calls."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    SCRIPTED = "scripted"


MODEL_NAME_REQUIRED = Rule(
    rule="self.provider == 'scripted' || has(self.name)",
    message="name is required unless provider is scripted",
    field_path=".name",
    reason="FieldValueRequired",
)


AZURE_NEEDS_OPENAI_AND_ENDPOINT = Rule(
    rule="!has(self.apiVersion) || (self.provider == 'openai' && has(self.endpoint))",
    message="apiVersion (Azure OpenAI) needs provider openai and the resource's endpoint",
    field_path=".apiVersion",
    reason="FieldValueInvalid",
)


SCRIPT_ONLY_FOR_SCRIPTED = Rule(
    rule="!has(self.script) || self.provider == 'scripted'",
    message="script is for provider scripted only",
    field_path=".script",
    reason="FieldValueForbidden",
)


SCRIPT_FROM_ONLY_FOR_SCRIPTED = Rule(
    rule="!has(self.scriptFrom) || self.provider == 'scripted'",
    message="scriptFrom is for provider scripted only",
    field_path=".scriptFrom",
    reason="FieldValueForbidden",
)


ONE_SCRIPT = Rule(
    rule="!has(self.script) || !has(self.scriptFrom)",
    message="set script or scriptFrom, not both",
    field_path=".scriptFrom",
    reason="FieldValueForbidden",
)


class ScriptSource(ApiModel):
    """Where a ``scripted`` model's script is kept, when not inline in the spec."""

    config_map_key_ref: ConfigMapKeyRef
    """A key of a ConfigMap in the Agent's namespace; the operator mounts it into the pod
    (the agent reads it when it starts: restart it, or name a new ConfigMap, to change it)."""


class ModelPrice(ApiModel):
    """What the model's tokens cost, in US dollars per million tokens (the provider's price
    list), for the estimated cost of each call in its audit record and metrics."""

    input: Annotated[float, Field(ge=0, le=10_000)]
    """Per million input (prompt) tokens."""
    output: Annotated[float, Field(ge=0, le=10_000)]
    """Per million output (completion) tokens."""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The estimated cost in US dollars of a call with these tokens."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


class ModelSpec(ApiModel):
    """The language model the agent calls."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            MODEL_NAME_REQUIRED,
            AZURE_NEEDS_OPENAI_AND_ENDPOINT,
            SCRIPT_ONLY_FOR_SCRIPTED,
            SCRIPT_FROM_ONLY_FOR_SCRIPTED,
            ONE_SCRIPT,
        )
    )

    provider: Provider
    """``openai`` (OpenAI or any OpenAI-compatible endpoint), ``anthropic``, ``gemini``, or
    ``scripted`` (deterministic, offline)."""
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """The model's name at the provider; required unless the provider is ``scripted``."""
    endpoint: Url | None = None
    """The provider's base URL, when not its public default."""
    api_key_secret_ref: SecretKeyRef | None = None
    """The Secret key holding the provider's API key."""
    api_version: (
        Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$", max_length=32)] | None
    ) = None
    """Azure OpenAI: the API version (``2024-10-21``); ``endpoint`` is then the resource
    (``https://NAME.openai.azure.com``) and ``name`` the deployment."""
    price: ModelPrice | None = None
    """What its tokens cost; without it, calls are counted in tokens only."""
    script: Annotated[str, Field(min_length=1, max_length=65_536)] | None = None
    """For ``scripted``: the script (YAML: a list of rules, or a mapping of ``rules`` and
    ``latency``), so the spec says which script decides. Without it (or ``scriptFrom``)
    the model echoes."""
    script_from: ScriptSource | None = None
    """For ``scripted``: the script kept in a ConfigMap instead (``configMapKeyRef``), for
    scripts shared by Agents or edited apart from them."""

    @model_validator(mode="after")
    def _name_unless_scripted(self) -> Self:
        if self.provider != Provider.SCRIPTED and self.name is None:
            raise MODEL_NAME_REQUIRED.error()
        if self.api_version is not None and (
            self.provider != Provider.OPENAI or self.endpoint is None
        ):
            raise AZURE_NEEDS_OPENAI_AND_ENDPOINT.error()
        if self.script is not None and self.provider != Provider.SCRIPTED:
            raise SCRIPT_ONLY_FOR_SCRIPTED.error()
        if self.script_from is not None and self.provider != Provider.SCRIPTED:
            raise SCRIPT_FROM_ONLY_FOR_SCRIPTED.error()
        if self.script is not None and self.script_from is not None:
            raise ONE_SCRIPT.error()
        return self


# --- skills ------------------------------------------------------------------------------

Tag = Annotated[str, Field(min_length=1, max_length=64)]


class Skill(ApiModel):
    """A skill the agent offers, published in its A2A AgentCard."""

    id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$", max_length=128)]
    """A stable identifier, unique within the agent."""
    name: Annotated[str, Field(min_length=1, max_length=256)]
    """A short name for people."""
    description: Annotated[str, Field(max_length=4096)] | None = None
    """What the skill does, for people and for other agents' models."""
    tags: Annotated[
        tuple[Tag, ...],
        Field(max_length=32, json_schema_extra=list_set()),
        AfterValidator(unique_by(lambda tag: tag)),
    ] = ()
    """Keywords for discovery."""


# --- topics ------------------------------------------------------------------------------


class SubscribeTopic(ApiModel):
    """A domain event topic the agent consumes."""

    topic: TopicName
    """The topic's name."""


PUBLISH_NOT_RESERVED = Rule(
    rule="!self.topic.startsWith('chorus.')",
    message="topics named chorus.* are managed by the platform and cannot be declared",
    field_path=".topic",
    reason="FieldValueForbidden",
)


class PublishTopic(ApiModel):
    """A domain event topic the agent writes; the operator creates it."""

    model_config = ConfigDict(json_schema_extra=validations(PUBLISH_NOT_RESERVED))

    topic: TopicName
    """The topic's name; ``chorus.*`` is reserved for the platform's own topics."""
    partitions: Annotated[StrictInt, Field(ge=1, le=1000)] = 3
    """How many partitions the topic has."""
    retention: Duration = "7d"
    """How long records are kept, like ``7d`` or ``12h``."""

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.topic.startswith("chorus."):
            raise PUBLISH_NOT_RESERVED.error()
        return self


# --- tools -------------------------------------------------------------------------------

McpToolName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{1,128}$", max_length=128)]
"""The name of one tool an MCP server lists."""


class ToolBinding(ApiModel):
    """A Tool resource the agent may use, and which of its tools."""

    ref: ObjectName
    """The name of a Tool in the agent's namespace."""
    allow: Annotated[
        tuple[McpToolName, ...],
        Field(min_length=1, max_length=128, json_schema_extra=list_set()),
        AfterValidator(unique_by(lambda name: name)),
    ]
    """The tools the agent may call; any other tool of the server is refused."""


# --- streams -----------------------------------------------------------------------------


class UpgradeMode(StrEnum):
    """How the Flink operator upgrades a running job."""

    STATELESS = "stateless"
    SAVEPOINT = "savepoint"
    LAST_STATE = "last-state"


class Stream(ApiModel):
    """A PyFlink job that turns raw events into the signals the agent acts on."""

    name: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
    """The stream's name, unique within the agent; its Flink deployment is named after it."""
    job: Annotated[str, Field(pattern=f"^{PYTHON_PATH}$", max_length=256)]
    """The Python module of the job (``chorus_flink.trading.signals``)."""
    parallelism: Annotated[StrictInt, Field(ge=1, le=1024)] = 1
    """How many parallel subtasks each operator of the job runs."""
    upgrade_mode: UpgradeMode = UpgradeMode.STATELESS
    """``stateless``, ``savepoint`` or ``last-state``."""
    config: Annotated[
        Mapping[str, Annotated[str, Field(max_length=1024)]],
        Field(max_length=64, json_schema_extra={"default": {}}),
    ] = Field(default_factory=dict)
    """The job's parameters (topics, window sizes); each job documents its own, with defaults.
    Unknown names are refused by the operator with a condition."""


# --- delivery and scaling ----------------------------------------------------------------


class Guarantee(StrEnum):
    """What the agent promises about each input record."""

    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class Delivery(ApiModel):
    """How the agent processes its input records."""

    guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    """``exactly-once`` (outputs and input offsets in one Kafka transaction) or
    ``at-least-once``."""
    max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    """How many times a record is tried before it counts as failed."""
    dead_letter: StrictBool = True
    """Whether a failed record goes to the agent's dead-letter topic (otherwise it is
    dropped and logged)."""
    max_in_flight: Annotated[StrictInt, Field(ge=1, le=10_000)] = 64
    """Most records worked on at once, across keys (records of one key run one at a time,
    in order). Size it to the model's concurrency: events per second times seconds each."""
    commit_interval: Duration = "100ms"
    """How often one transaction commits the outputs of the records finished since the
    last, with their offsets: the latency it adds, against the transactions' cost
    (10ms to 1m)."""
    handler_timeout: Duration = "10m"
    """How long a record may take until it is finished (an event handled, a request's
    task stored); then it is cancelled and dead-lettered with the reason ``timeout``. An
    A2A task's execution gets the same bound, then fails with the reason ``timeout``
    (1s to 1d)."""

    @field_validator("commit_interval")
    @classmethod
    def _commit_interval_range(cls, value: str) -> str:
        if not 10 <= duration_ms(value) <= 60_000:
            raise ValueError(f"commitInterval must be from 10ms to 1m, not {value}")
        return value

    @field_validator("handler_timeout")
    @classmethod
    def _handler_timeout_range(cls, value: str) -> str:
        if not 1000 <= duration_ms(value) <= 86_400_000:
            raise ValueError(f"handlerTimeout must be from 1s to 1d, not {value}")
        return value


SCALING_RANGE = Rule(
    rule="self.maxReplicas >= self.minReplicas",
    message="maxReplicas must be greater than or equal to minReplicas",
    field_path=".maxReplicas",
)


class Scaling(ApiModel):
    """Autoscaling on consumer lag; without it the agent runs one replica."""

    model_config = ConfigDict(json_schema_extra=validations(SCALING_RANGE))

    min_replicas: Annotated[StrictInt, Field(ge=0, le=1000)] = 1
    """The fewest replicas; 0 lets the agent scale to zero when it has no lag."""
    max_replicas: Annotated[StrictInt, Field(ge=1, le=1000)]
    """The most replicas; at least ``minReplicas``."""
    lag_threshold: Annotated[StrictInt, Field(ge=1)] = 1000
    """Consumer lag per replica above which the agent scales out."""

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise SCALING_RANGE.error()
        return self


# --- the spec ----------------------------------------------------------------------------

HANDLER_OR_INSTRUCTIONS = Rule(
    rule="has(self.handler) || has(self.instructions)",
    message="set handler or instructions (or both): an agent needs code or a prompt",
)
MODEL_FOR_INSTRUCTIONS = Rule(
    rule="has(self.handler) || has(self.model)",
    message="model is required when there is no handler: instructions are run by a model",
    field_path=".model",
    reason="FieldValueRequired",
)


class AgentSpec(ApiModel):
    """What the agent is, what it listens to, what it may touch, and how it runs."""

    model_config = ConfigDict(
        json_schema_extra=validations(HANDLER_OR_INSTRUCTIONS, MODEL_FOR_INSTRUCTIONS)
    )

    description: Annotated[str, Field(max_length=1024)] | None = None
    """What the agent does, for people and for its AgentCard."""
    image: Annotated[str, Field(pattern=r"^\S+$", max_length=512)] | None = None
    """The container image; the operator's default runtime image when omitted."""
    handler: (
        Annotated[str, Field(pattern=f"^{PYTHON_PATH}:{PYTHON_PATH}$", max_length=256)] | None
    ) = None
    """A code-defined agent, ``module:attribute`` (``chorus_agents.trading.risk:RiskAgent``)."""
    instructions: Annotated[str, Field(min_length=1, max_length=32768)] | None = None
    """The system prompt of an agent defined by instructions (or of a handler that uses them)."""
    model: ModelSpec | None = None
    """The language model; required when there is no handler."""
    skills: Annotated[
        tuple[Skill, ...],
        Field(max_length=64, json_schema_extra=list_map("id")),
        AfterValidator(unique_by(lambda skill: skill.id)),
    ] = ()
    """The skills published in the AgentCard."""
    subscribe: Annotated[
        tuple[SubscribeTopic, ...],
        Field(max_length=64, json_schema_extra=list_map("topic")),
        AfterValidator(unique_by(lambda entry: entry.topic)),
    ] = ()
    """Domain event topics the agent consumes, besides its own inbox."""
    publish: Annotated[
        tuple[PublishTopic, ...],
        Field(max_length=64, json_schema_extra=list_map("topic")),
        AfterValidator(unique_by(lambda entry: entry.topic)),
    ] = ()
    """Domain event topics the agent writes; the operator creates them."""
    tools: Annotated[
        tuple[ToolBinding, ...],
        Field(max_length=32, json_schema_extra=list_map("ref")),
        AfterValidator(unique_by(lambda binding: binding.ref)),
    ] = ()
    """Tools the agent may call, each allow-listed."""
    streams: Annotated[
        tuple[Stream, ...],
        Field(max_length=16, json_schema_extra=list_map("name")),
        AfterValidator(unique_by(lambda stream: stream.name)),
    ] = ()
    """Flink jobs that feed the agent."""
    delivery: Annotated[Delivery, Field(json_schema_extra={"default": {}})] = Field(
        default_factory=Delivery
    )
    """How input records are processed."""
    scaling: Scaling | None = None
    """Autoscaling on consumer lag; one replica when omitted."""
    resources: ResourceRequirements | None = None
    """Compute resources of the agent's container."""

    @model_validator(mode="after")
    def _handler_or_instructions(self) -> Self:
        if self.handler is None and self.instructions is None:
            raise HANDLER_OR_INSTRUCTIONS.error()
        if self.handler is None and self.model is None:
            raise MODEL_FOR_INSTRUCTIONS.error()
        return self


# --- the status --------------------------------------------------------------------------


class AgentConditionType(StrEnum):
    """The conditions the operator reports on an Agent."""

    READY = "Ready"
    TOPICS_READY = "TopicsReady"
    ACCESS_READY = "AccessReady"
    WORKLOAD_READY = "WorkloadReady"
    STREAMS_READY = "StreamsReady"
    TOOLS_RESOLVED = "ToolsResolved"


class AgentTopics(StatusModel):
    """The topics the operator made for the agent itself."""

    inbox: Annotated[str, Field(max_length=249)] | None = None
    """A2A requests to the agent: ``chorus.<namespace>.a2a.<agent>.inbox``."""
    replies: Annotated[str, Field(max_length=249)] | None = None
    """Answers to the requests the agent sent: ``chorus.<namespace>.a2a.<agent>.replies``."""
    dead_letter: Annotated[str, Field(max_length=249)] | None = None
    """What the agent could not process: ``chorus.<namespace>.<agent>.dlq``."""


class AgentStatus(StatusModel):
    """What the operator observed and did; written only by the operator."""

    phase: Phase | None = None
    """A summary for people: Pending, Ready, Degraded or Failed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The ``metadata.generation`` this status describes."""
    conditions: ConditionList = ()
    """Ready, TopicsReady, AccessReady, WorkloadReady, StreamsReady, ToolsResolved."""
    topics: AgentTopics | None = None
    """The agent's own topics."""
    agent_card: Mapping[str, Any] | None = None
    """The A2A AgentCard the agent publishes."""


# --- the resource ------------------------------------------------------------------------

RESERVED_NAME = Rule(
    rule=f"self.metadata.name != '{A2A_SEGMENT}'",
    message=f"metadata.name {A2A_SEGMENT} is reserved: the namespace's A2A topics are named "
    f"chorus.<namespace>.{A2A_SEGMENT}.<agent>.inbox, so this agent's own topics would be "
    "writable by every other agent",
)


class Agent(ApiModel):
    """An event-driven AI agent: it consumes events, reasons with a model and tools,
    and publishes."""

    model_config = ConfigDict(json_schema_extra=validations(NAME_RULE, RESERVED_NAME))

    api_version: Annotated[Literal["chorus.dev/v1alpha1"], WithJsonSchema({"type": "string"})] = (
        "chorus.dev/v1alpha1"
    )
    """The API version: ``chorus.dev/v1alpha1``."""
    kind: Annotated[Literal["Agent"], WithJsonSchema({"type": "string"})] = "Agent"
    """The kind: ``Agent``."""
    metadata: Annotated[ObjectMeta, WithJsonSchema({"type": "object"})]
    """Standard object metadata."""
    spec: AgentSpec
    """What the agent should be."""
    status: AgentStatus | None = None
    """What the operator observed."""

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.metadata.name == A2A_SEGMENT:
            # The CRD rule sits on the object (CEL reaches metadata.name only from there);
            # the error names the field, as the apiserver's message does.
            raise rule_error(RESERVED_NAME.message, ".metadata.name")
        return self

    def condition(self, type_: str) -> Condition | None:
        """The status condition of ``type_``, or ``None`` when there is none."""
        if self.status is None:
            return None
        return next((c for c in self.status.conditions if c.type == type_), None)
