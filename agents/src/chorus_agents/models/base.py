"""The model provider interface: one method, provider-neutral types.

A :class:`ModelProvider` turns a conversation (a system prompt, messages, the tools the
model may call) into the model's next turn: text, tool calls, or both, with the tokens
it cost. Providers translate to and from their own wire formats (OpenAI-compatible,
Anthropic, the offline ``scripted`` one); the agent loop only sees these types.

Contract of :meth:`ModelProvider.complete`:

- safe to call concurrently (one request per call, no shared conversation state);
- raises :class:`ModelError` for a failure of the provider (HTTP status, malformed
  answer), with ``retryable`` set when trying again may help (rate limit, 5xx, timeout);
- never raises for what the model says: a refusal is text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chorus_api.agent import ModelPrice

Role = Literal["user", "assistant", "tool"]
StopReason = Literal["end", "tool_use", "max_tokens"]


class ModelError(RuntimeError):
    """The provider failed; ``retryable`` says whether another try may succeed, and
    ``retry_after`` how long the provider asked to wait first (seconds), when it said."""

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after

    @classmethod
    def for_status(
        cls, where: str, status: int, detail: str, retry_after: float | None = None
    ) -> ModelError:
        """The error of an HTTP answer ``status``: retryable for 408, 409, 429 and 5xx."""
        retryable = status in RETRYABLE_STATUS or status >= 500
        return cls(
            f"{where}: HTTP {status}: {detail}", retryable=retryable, retry_after=retry_after
        )


RETRYABLE_STATUS = frozenset({408, 409, 429})
"""HTTP statuses below 500 worth another try: timeout, conflict, rate limit."""


class StatusError(Protocol):
    """What the ``openai`` and ``anthropic`` SDKs' ``APIStatusError`` both carry."""

    status_code: int
    body: object
    message: str

    @property
    def response(self) -> Any: ...


def status_error(where: str, exc: StatusError) -> ModelError:
    """The :class:`ModelError` of an SDK's HTTP error: the API's own message, retryable as
    :meth:`ModelError.for_status` says, with the ``Retry-After`` the provider sent."""
    return ModelError.for_status(
        where,
        exc.status_code,
        error_detail(exc.body, str(exc.message)),
        retry_after_seconds(exc.response.headers.get("retry-after")),
    )


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (its delta-seconds form; an HTTP date or
    anything else is ``None``)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def error_detail(body: object, fallback: str) -> str:
    """The API's own error message from an error answer's JSON ``body`` (OpenAI and
    Anthropic both nest it as ``error.message``), else ``fallback``; at most 500 characters."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:500]
    return fallback[:500]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its MCP name, description and JSON Schema input."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool call; ``id`` pairs it with its result message."""

    id: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatMessage:
    """One turn: a user's text, the assistant's text and tool calls, or a tool's result."""

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """For ``tool`` messages: the call this is the result of."""
    is_error: bool = False
    """For ``tool`` messages: the call failed and ``text`` says why."""


@dataclass(frozen=True)
class ModelRequest:
    """What the model is asked."""

    messages: tuple[ChatMessage, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024


@dataclass(frozen=True)
class Usage:
    """Tokens a call cost, as the provider counts them."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass(frozen=True)
class ModelResponse:
    """The model's turn."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    """The model that answered, as the provider names it."""
    stop_reason: StopReason = "end"

    def as_message(self) -> ChatMessage:
        """This turn as the assistant message of the conversation's next request."""
        return ChatMessage(role="assistant", text=self.text, tool_calls=self.tool_calls)


class ModelProvider(ABC):
    """Answers model requests; see the module docstring for the contract."""

    name: str
    """The provider (``openai``, ``anthropic``, ``gemini``, ``scripted``), for audit records
    and metrics."""
    price: ModelPrice | None = None
    """What its tokens cost (the Agent's ``model.price``, set by ``provider_for``): every
    loop that calls it audits each call's estimated cost."""

    @abstractmethod
    async def complete(self, request: ModelRequest) -> ModelResponse:
        """The model's next turn for ``request``."""
