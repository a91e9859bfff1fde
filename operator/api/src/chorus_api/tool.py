"""The Tool kind: an MCP server that agents may call, remote or run by the operator.

``Tool.model_validate(obj)`` parses a whole resource as the apiserver returns it and
enforces every rule the CRD enforces, with the same messages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StrictInt, WithJsonSchema, model_validator

from chorus_api.common import (
    NAME_RULE,
    ApiModel,
    Condition,
    ConditionList,
    EnvList,
    ObjectMeta,
    ResourceRequirements,
    SecretKeyRef,
    StatusModel,
    Url,
)
from chorus_api.rules import Rule, validations


class McpServer(ApiModel):
    """An MCP server the operator runs (a Deployment and a Service) from an image."""

    image: Annotated[str, Field(pattern=r"^\S+$", min_length=1, max_length=512)]
    """The container image of the server."""
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 8000
    """The port the server listens on (streamable HTTP)."""
    path: Annotated[str, Field(pattern=r"^/\S*$", max_length=256)] = "/mcp"
    """The HTTP path of the MCP endpoint."""
    args: Annotated[tuple[Annotated[str, Field(max_length=4096)], ...], Field(max_length=64)] = ()
    """Arguments to the image's entrypoint."""
    env: EnvList = ()
    """Environment variables of the server's container."""
    resources: ResourceRequirements | None = None
    """Compute resources of the server's container."""


class McpAuth(ApiModel):
    """How agents authenticate to the server."""

    bearer_token_secret_ref: SecretKeyRef
    """The Secret key holding a bearer token sent in the ``Authorization`` header."""


URL_XOR_SERVER = Rule(
    rule="has(self.url) != has(self.server)",
    message=(
        "set exactly one of url (a remote MCP server) and server (an MCP server the operator runs)"
    ),
)


class McpSpec(ApiModel):
    """Where the MCP server is: a remote ``url``, or a ``server`` the operator runs."""

    model_config = ConfigDict(json_schema_extra=validations(URL_XOR_SERVER))

    url: Url | None = None
    """The URL of a remote MCP server (streamable HTTP)."""
    server: McpServer | None = None
    """An MCP server the operator runs."""
    auth: McpAuth | None = None
    """Credentials agents present to the server."""

    @model_validator(mode="after")
    def _url_xor_server(self) -> Self:
        if (self.url is None) == (self.server is None):
            raise URL_XOR_SERVER.error()
        return self


class ToolSpec(ApiModel):
    """An MCP server and how agents call it."""

    description: Annotated[str, Field(max_length=1024)] | None = None
    """What the server offers, for people."""
    mcp: McpSpec
    """Where the MCP server is."""
    timeout_seconds: Annotated[StrictInt, Field(ge=1, le=3600)] = 30
    """How long one tool call may take, in seconds."""


class ToolConditionType(StrEnum):
    """The conditions the operator reports on a Tool."""

    READY = "Ready"
    SERVER_READY = "ServerReady"
    DISCOVERED = "Discovered"


class DiscoveredTool(StatusModel):
    """One tool the server listed (MCP ``tools/list``)."""

    name: Annotated[str, Field(max_length=128)]
    """The tool's name, as agents allow-list it."""
    description: str | None = None
    """What the tool does, as the server describes it."""


class ToolStatus(StatusModel):
    """What the operator observed; written only by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The ``metadata.generation`` this status describes."""
    conditions: ConditionList = ()
    """Ready, ServerReady (when the operator runs the server), Discovered."""
    endpoint: Annotated[str, Field(max_length=2048)] | None = None
    """The URL agents use: ``mcp.url``, or the Service of the server the operator runs."""
    discovered_tools: Annotated[tuple[DiscoveredTool, ...], Field(max_length=1024)] = ()
    """The tools the server lists."""
    discovered_tool_count: Annotated[int, Field(ge=0)] | None = None
    """How many tools the server lists (shown by ``kubectl get tools``)."""


class Tool(ApiModel):
    """An MCP server agents may call, within their allow-lists."""

    model_config = ConfigDict(json_schema_extra=validations(NAME_RULE))

    api_version: Annotated[Literal["chorus.dev/v1alpha1"], WithJsonSchema({"type": "string"})] = (
        "chorus.dev/v1alpha1"
    )
    """The API version: ``chorus.dev/v1alpha1``."""
    kind: Annotated[Literal["Tool"], WithJsonSchema({"type": "string"})] = "Tool"
    """The kind: ``Tool``."""
    metadata: Annotated[ObjectMeta, WithJsonSchema({"type": "object"})]
    """Standard object metadata."""
    spec: ToolSpec
    """The MCP server."""
    status: ToolStatus | None = None
    """What the operator observed."""

    def condition(self, type_: str) -> Condition | None:
        """The status condition of ``type_``, or ``None`` when there is none."""
        if self.status is None:
            return None
        return next((c for c in self.status.conditions if c.type == type_), None)
