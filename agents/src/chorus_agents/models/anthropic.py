r"""The ``anthropic`` provider: the Messages API, on the official SDK.

``anthropic.AsyncAnthropic`` against ``https://api.anthropic.com`` or ``endpoint`` (a
gateway that speaks the Messages API). The mapping:

- the system prompt is the top-level ``system``; tools are ``{name, description,
  input_schema}``;
- an assistant turn is ``text`` and ``tool_use`` content blocks; tool results are
  ``tool_result`` blocks (``is_error`` for a failed call) in the next ``user`` message,
  and consecutive user-side turns are merged, as the API wants roles to alternate;
- ``stop_reason`` ``tool_use`` / ``max_tokens`` / anything else map to ``tool_use`` /
  ``max_tokens`` / ``end`` (a ``refusal`` is the model's text); ``usage.input_tokens`` /
  ``output_tokens`` to :class:`~chorus_agents.models.base.Usage`.

Before a request is sent, :func:`chorus_agents.models.rules.check_anthropic` refuses what
the API would (a tool result that answers no call, an empty message). Retries are the
runtime's (``max_retries=0``): 408, 409, 429, 5xx and 529 (overloaded) are retryable
:class:`~chorus_agents.models.base.ModelError`\ s. The key is never logged.
"""

from __future__ import annotations

from typing import Any, cast

import anthropic
from anthropic.types import Message

from chorus_agents.models.base import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    StopReason,
    ToolCall,
    Usage,
    status_error,
)
from chorus_agents.models.rules import check_anthropic

_STOP: dict[str, StopReason] = {"tool_use": "tool_use", "max_tokens": "max_tokens"}


class AnthropicModel(ModelProvider):
    """A Claude model through the Messages API; see the module docstring."""

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        endpoint: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.endpoint = endpoint
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=endpoint, timeout=timeout, max_retries=0
        )

    def __repr__(self) -> str:
        return f"AnthropicModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        where = f"model anthropic/{self.model}"
        messages = _messages(request.messages)
        tools = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.input_schema),
            }
            for tool in request.tools
        ]
        check_anthropic(messages, where, tools)
        try:
            answer = await self._client.messages.create(
                model=self.model,
                max_tokens=request.max_tokens,
                messages=cast(Any, messages),
                system=request.system if request.system else anthropic.omit,
                tools=cast(Any, tools) if tools else anthropic.omit,
            )
        except anthropic.APITimeoutError:
            raise ModelError(f"{where}: timed out", retryable=True) from None
        except anthropic.APIConnectionError as exc:
            raise ModelError(f"{where}: cannot reach the endpoint: {exc}", retryable=True) from None
        except anthropic.APIStatusError as exc:
            raise status_error(where, exc) from None
        return response_of(answer, self.model)

    async def aclose(self) -> None:
        """Closes the SDK's HTTP client."""
        await self._client.close()


def response_of(answer: Message, model: str) -> ModelResponse:
    """The provider-neutral turn of a Messages answer (the SDK's parsed type)."""
    text = "".join(block.text for block in answer.content if block.type == "text")
    calls = tuple(
        ToolCall(id=block.id, name=block.name, arguments=dict(block.input or {}))
        for block in answer.content
        if block.type == "tool_use"
    )
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=Usage(
            input_tokens=answer.usage.input_tokens, output_tokens=answer.usage.output_tokens
        ),
        model=answer.model or model,
        stop_reason=_STOP.get(answer.stop_reason or "", "tool_use" if calls else "end"),
    )


def _messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id or "",
            "content": message.text,
        }
        if message.is_error:
            block["is_error"] = True
        return [block]
    blocks: list[dict[str, Any]] = []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        )
    return blocks
