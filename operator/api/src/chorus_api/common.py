"""Types both kinds share: the model base, names, durations, references, conditions.

Every constraint here is stated once, as pydantic metadata, and reaches the CRD
through :mod:`chorus_api.schema`: patterns, lengths, enums and CEL rules alike.
Lengths are bounded on purpose: the apiserver estimates the cost of each CEL rule
from them and refuses a CRD whose rules could be too expensive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from chorus_api.rules import Rule, list_map, rule_error, unique_by, validations

GROUP = "chorus.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase aliases, immutable, strict keys.

    Fields are read by their Python names and written to Kubernetes by their aliases
    (``model_dump(by_alias=True)``); both names are accepted on input. Unknown keys are
    refused, so a typo in a manifest fails here instead of being pruned silently.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


class StatusModel(ApiModel):
    """Base of status models: written by the operator, so unknown keys are ignored.

    A newer operator may add status fields an older reader does not know yet.
    """

    model_config = ConfigDict(extra="ignore")


# --- names -----------------------------------------------------------------------------

TOPIC_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
TOPIC_NOT_DOTS = Rule(
    rule="self != '.' && self != '..'",
    message="a topic name cannot be '.' or '..'",
)


def _topic_not_dots(value: str) -> str:
    if value in {".", ".."}:
        raise TOPIC_NOT_DOTS.error()
    return value


TopicName = Annotated[
    str,
    Field(
        pattern=TOPIC_PATTERN,
        min_length=1,
        max_length=249,
        json_schema_extra=validations(TOPIC_NOT_DOTS),
    ),
    AfterValidator(_topic_not_dots),
]
"""A Kafka topic name: letters, digits, ``.``, ``_`` and ``-``, at most 249, not ``.``/``..``."""

DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
ObjectName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
"""The name of a Chorus object or of what it refers to: a DNS-1035 label (it names a Service)."""

SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SecretName = Annotated[str, Field(pattern=SECRET_NAME_PATTERN, min_length=1, max_length=253)]
"""The name of a Secret or ConfigMap: a DNS-1123 subdomain."""

ConfigKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)]
"""A key in a Secret or ConfigMap."""

PYTHON_PATH = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
Url = Annotated[str, Field(pattern=URL_PATTERN, max_length=2048)]
"""An absolute ``http`` or ``https`` URL."""


# --- durations ---------------------------------------------------------------------------

DURATION_PATTERN = r"^[1-9][0-9]{0,8}(ms|s|m|h|d)$"
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=11)]
"""A positive duration: a whole number and a unit, one of ``ms``, ``s``, ``m``, ``h``, ``d``."""


def duration_ms(value: str) -> int:
    """Milliseconds in a :data:`Duration`: ``"7d"`` -> ``604800000``.

    Raises ``ValueError`` when ``value`` is not a duration.
    """
    match = re.fullmatch(DURATION_PATTERN, value)
    if match is None:
        raise ValueError(f"not a duration (like 7d, 12h, 30m, 500ms): {value!r}")
    return int(value[: match.start(1)]) * _DURATION_MS[match.group(1)]


# --- references --------------------------------------------------------------------------


class SecretKeyRef(ApiModel):
    """A key of a Secret in the same namespace as the object that refers to it."""

    name: SecretName
    """The Secret's name."""
    key: ConfigKey
    """The key within the Secret."""


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the same namespace as the object that refers to it."""

    name: SecretName
    """The ConfigMap's name."""
    key: ConfigKey
    """The key within the ConfigMap."""


ENV_SOURCE_XOR = Rule(
    rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",
    message="set exactly one of secretKeyRef and configMapKeyRef",
)


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from: exactly one source."""

    model_config = ConfigDict(json_schema_extra=validations(ENV_SOURCE_XOR))

    secret_key_ref: SecretKeyRef | None = None
    """A key of a Secret."""
    config_map_key_ref: ConfigMapKeyRef | None = None
    """A key of a ConfigMap."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ENV_SOURCE_XOR.error()
        return self


ENV_VALUE_XOR = Rule(
    rule="!(has(self.value) && has(self.valueFrom))",
    message="set value or valueFrom, not both",
    field_path=".valueFrom",
    reason="FieldValueForbidden",
)


class EnvVar(ApiModel):
    """An environment variable of a container the operator runs."""

    model_config = ConfigDict(json_schema_extra=validations(ENV_VALUE_XOR))

    name: Annotated[str, Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=253)]
    """The variable's name."""
    value: Annotated[str, Field(max_length=32768)] | None = None
    """A literal value."""
    value_from: EnvVarSource | None = None
    """A value read from a Secret or a ConfigMap."""

    @model_validator(mode="after")
    def _value_or_source(self) -> Self:
        if self.value is not None and self.value_from is not None:
            raise ENV_VALUE_XOR.error()
        return self


EnvList = Annotated[
    tuple[EnvVar, ...],
    Field(max_length=64, json_schema_extra=list_map("name")),
    AfterValidator(unique_by(lambda env: env.name)),
]
"""Environment variables, each name at most once."""


# --- resources ---------------------------------------------------------------------------

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: int | str) -> int | str:
    if isinstance(value, str) and re.fullmatch(QUANTITY_PATTERN, value) is None:
        raise ValueError(f"not a Kubernetes quantity (like 500m, 1Gi, 2): {value!r}")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes quantity (``500m``, ``1Gi``, ``2``), as in a container's resources."""


class ResourceRequirements(ApiModel):
    """Compute resources of a container, as in a Kubernetes pod spec."""

    limits: Mapping[str, Quantity] | None = None
    """The most the container may use, per resource name (``cpu``, ``memory``)."""
    requests: Mapping[str, Quantity] | None = None
    """What the container is guaranteed, per resource name; at most the limits."""


# --- status ------------------------------------------------------------------------------


class Phase(StrEnum):
    """A summary of the conditions, for people: the conditions are the contract."""

    PENDING = "Pending"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of an object's state, as in ``metav1.Condition``."""

    type: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=316)]
    """The aspect, in CamelCase (``Ready``, ``TopicsReady``)."""
    status: ConditionStatus
    """Whether it holds: True, False or Unknown."""
    reason: (
        Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)]
        | None
    ) = None
    """Why, in one CamelCase word a program can match on."""
    message: Annotated[str, Field(max_length=32768)] | None = None
    """Why, for people."""
    last_transition_time: datetime | None = None
    """When ``status`` last changed."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The ``metadata.generation`` the condition was computed from."""


ConditionList = Annotated[
    tuple[Condition, ...],
    Field(max_length=32, json_schema_extra=list_map("type")),
    AfterValidator(unique_by(lambda condition: condition.type)),
]
"""Conditions, each type at most once."""


# --- the object envelope ----------------------------------------------------------------

NAME_RULE = Rule(
    rule=(
        "self.metadata.name.size() <= 63 && "
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    ),
    message="metadata.name must be a DNS-1035 label (lower case letters, digits and '-', "
    "starting with a letter, at most 63 characters): the operator names a Service after it",
)


class ObjectMeta(BaseModel):
    """The part of ``metadata`` Chorus reads; other keys are kept as they are."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="allow",
    )

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    creation_timestamp: datetime | None = None

    @field_validator("name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        if len(name) > 63 or re.fullmatch(DNS_LABEL_PATTERN, name) is None:
            raise rule_error(NAME_RULE.message)
        return name
