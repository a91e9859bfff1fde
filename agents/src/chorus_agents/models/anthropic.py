"""The ``anthropic`` provider: the Messages API, over httpx.

``POST {endpoint}/v1/messages`` (endpoint default ``https://api.anthropic.com``) with the
headers ``x-api-key`` and ``anthropic-version: 2023-06-01``. The mapping:

- the system prompt is the top-level ``system``; tools are ``{name, description,
  input_schema}``;
- an assistant turn is ``text`` and ``tool_use`` content blocks; tool results are
  ``tool_result`` blocks (``is_error`` for a failed call) in the next ``user`` message,
  and consecutive user-side turns are merged, as the API wants roles to alternate;
- ``stop_reason`` ``tool_use`` / ``max_tokens`` / anything else map to ``tool_use`` /
  ``max_tokens`` / ``end``; ``usage.input_tokens`` / ``output_tokens`` to
  :class:`~chorus_agents.models.base.Usage`.

HTTP 429, 5xx and 529 (overloaded) are retryable. The key is never logged.
"""

from __future__ import annotations

from typing import Any

import httpx

from chorus_agents.models.base import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    StopReason,
    ToolCall,
    Usage,
)
from chorus_agents.models.http import post_json

DEFAULT_ENDPOINT = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
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
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self._client = client or httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"AnthropicModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": _messages(request.messages),
        }
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": dict(tool.input_schema),
                }
                for tool in request.tools
            ]
        where = f"model anthropic/{self.model}"
        answer = await post_json(
            self._client, f"{self.endpoint}/v1/messages", body, self._headers, where
        )
        try:
            blocks = answer["content"]
            text = "".join(block["text"] for block in blocks if block["type"] == "text")
            calls = tuple(
                ToolCall(
                    id=block["id"], name=block["name"], arguments=dict(block.get("input") or {})
                )
                for block in blocks
                if block["type"] == "tool_use"
            )
            usage = answer.get("usage") or {}
            return ModelResponse(
                text=text,
                tool_calls=calls,
                usage=Usage(
                    input_tokens=int(usage.get("input_tokens", 0)),
                    output_tokens=int(usage.get("output_tokens", 0)),
                ),
                model=str(answer.get("model") or self.model),
                stop_reason=_STOP.get(answer.get("stop_reason"), "tool_use" if calls else "end"),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelError(f"{where}: malformed answer: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        """Closes the HTTP client."""
        await self._client.aclose()


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
