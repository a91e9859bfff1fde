"""The ``openai`` provider: any OpenAI-compatible Chat Completions endpoint, over httpx.

``POST {endpoint}/chat/completions`` (endpoint default ``https://api.openai.com/v1``;
vLLM, Ollama, LiteLLM and Azure-style gateways speak the same) with ``Authorization:
Bearer <key>`` when there is a key. The mapping:

- the system prompt is the first message (``role: system``);
- tools are ``{type: function, function: {name, description, parameters}}``;
- an assistant turn's tool calls are ``tool_calls`` (arguments as a JSON string), a
  tool's result is a ``role: tool`` message with its ``tool_call_id`` (a failed call's
  text is prefixed ``ERROR:``, the format has no error flag);
- ``finish_reason`` ``tool_calls`` / ``length`` / anything else map to ``tool_use`` /
  ``max_tokens`` / ``end``; ``usage.prompt_tokens`` / ``completion_tokens`` to
  :class:`~chorus_agents.models.base.Usage`.

The API key is never logged nor put in an error message.
"""

from __future__ import annotations

import json
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

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
_STOP: dict[str, StopReason] = {"tool_calls": "tool_use", "length": "max_tokens"}


class OpenAIModel(ModelProvider):
    """An OpenAI-compatible chat model; see the module docstring.

    ``client`` replaces the provider's own ``httpx.AsyncClient`` (which it closes in
    :meth:`aclose`); ``timeout`` bounds one request.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(request),
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": dict(tool.input_schema),
                    },
                }
                for tool in request.tools
            ]
        where = f"model openai/{self.model}"
        answer = await post_json(
            self._client, f"{self.endpoint}/chat/completions", body, self._headers, where
        )
        return self._response(answer, where)

    def _response(self, answer: Any, where: str) -> ModelResponse:
        try:
            choice = answer["choices"][0]
            message = choice["message"]
            calls = tuple(
                ToolCall(
                    id=call["id"],
                    name=call["function"]["name"],
                    arguments=_arguments(call["function"].get("arguments"), where),
                )
                for call in message.get("tool_calls") or ()
            )
            usage = answer.get("usage") or {}
            return ModelResponse(
                text=message.get("content") or "",
                tool_calls=calls,
                usage=Usage(
                    input_tokens=int(usage.get("prompt_tokens", 0)),
                    output_tokens=int(usage.get("completion_tokens", 0)),
                ),
                model=str(answer.get("model") or self.model),
                stop_reason=_STOP.get(choice.get("finish_reason"), "tool_use" if calls else "end"),
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ModelError(f"{where}: malformed answer: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        """Closes the HTTP client."""
        await self._client.aclose()


def _messages(request: ModelRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        messages.append(_message(message))
    return messages


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        text = f"ERROR: {message.text}" if message.is_error else message.text
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": text}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.text or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
                    },
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.text}


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    parsed = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(parsed, dict):
        raise ModelError(f"{where}: tool call arguments are not a JSON object")
    return parsed


async def post_json(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str], where: str
) -> Any:
    """POSTs ``body``; the parsed JSON answer, or a :class:`ModelError` saying what failed."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise ModelError(f"{where}: timed out ({url})", retryable=True) from None
    except httpx.TransportError as exc:
        raise ModelError(f"{where}: cannot reach {url}: {exc}", retryable=True) from None
    if response.status_code >= 400:
        raise ModelError.for_status(where, response.status_code, _detail(response))
    try:
        return response.json()
    except ValueError:
        raise ModelError(f"{where}: the answer is not JSON") from None


def _detail(response: httpx.Response) -> str:
    """The provider's error message (both OpenAI and Anthropic nest it as ``error.message``)."""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    except (ValueError, AttributeError):
        pass
    return response.text[:500] or response.reason_phrase
