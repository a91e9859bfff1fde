"""The ``openai`` provider: OpenAI and every OpenAI-compatible server, on the official SDK.

Chat Completions through ``openai.AsyncOpenAI``: the public API by default, or any server
that speaks it (vLLM, Ollama, LM Studio, LiteLLM, ``chorus model serve``) at ``endpoint``,
its base URL (``http://127.0.0.1:8000/v1``); with ``api_version``, Azure OpenAI through
``openai.AsyncAzureOpenAI`` (``endpoint`` the resource, the model's name its deployment).
The mapping:

- the system prompt is the first message (``role: system``);
- tools are ``{type: function, function: {name, description, parameters}}``;
- an assistant turn's tool calls are ``tool_calls`` (arguments as a JSON string), a
  tool's result is a ``role: tool`` message with its ``tool_call_id`` (a failed call's
  text is prefixed ``ERROR:``, the format has no error flag);
- the token limit is ``max_completion_tokens`` (``max_tokens`` is deprecated, and the
  reasoning models refuse it);
- ``finish_reason`` ``tool_calls`` / ``length`` / anything else map to ``tool_use`` /
  ``max_tokens`` / ``end``; a refusal is the model's text; ``usage.prompt_tokens`` /
  ``completion_tokens`` to :class:`~chorus_agents.models.base.Usage`.

Before a request is sent, :func:`chorus_agents.models.rules.check_openai` refuses what the
API would (a tool result that answers no call, an empty message), naming the message.

**Retries are the runtime's**, not the SDK's (``max_retries=0``): a failure is a
:class:`~chorus_agents.models.base.ModelError` with ``retryable`` set for a timeout, a lost
connection, 408, 409, 429 and 5xx, and the agent loop decides. The API key is never logged
nor put in an error message; a server that needs none gets a placeholder.
"""

from __future__ import annotations

import json
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion

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
from chorus_agents.models.rules import check_openai

NO_KEY = "no-key"
"""The key sent to a server that needs none (the SDK requires one)."""
_STOP: dict[str, StopReason] = {"tool_calls": "tool_use", "length": "max_tokens"}


class OpenAIModel(ModelProvider):
    """An OpenAI or OpenAI-compatible chat model; see the module docstring.

    ``timeout`` bounds one request.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        api_version: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.endpoint = endpoint
        self._client: openai.AsyncOpenAI
        if api_version is not None:
            # Azure OpenAI: the resource's endpoint, the deployment named like the model.
            if endpoint is None:
                raise ValueError(f"model openai/{model}: apiVersion (Azure) needs the endpoint")
            self._client = openai.AsyncAzureOpenAI(
                azure_endpoint=endpoint,
                api_version=api_version,
                api_key=api_key or NO_KEY,
                timeout=timeout,
                max_retries=0,
            )
        else:
            self._client = openai.AsyncOpenAI(
                api_key=api_key or NO_KEY, base_url=endpoint, timeout=timeout, max_retries=0
            )

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        where = f"model openai/{self.model}"
        messages = openai_messages(request)
        tools = [
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
        check_openai(messages, where, tools)
        try:
            answer = await self._client.chat.completions.create(
                model=self.model,
                messages=cast(Any, messages),
                max_completion_tokens=request.max_tokens,
                tools=cast(Any, tools) if tools else openai.omit,
            )
        except openai.APITimeoutError:
            raise ModelError(f"{where}: timed out", retryable=True) from None
        except openai.APIConnectionError as exc:
            raise ModelError(f"{where}: cannot reach the endpoint: {exc}", retryable=True) from None
        except openai.APIStatusError as exc:
            raise status_error(where, exc) from None
        return response_of(answer, self.model, where)

    async def aclose(self) -> None:
        """Closes the SDK's HTTP client."""
        await self._client.close()


def response_of(answer: ChatCompletion, model: str, where: str) -> ModelResponse:
    """The provider-neutral turn of a Chat Completions answer (the SDK's parsed type)."""
    if not answer.choices:
        raise ModelError(f"{where}: malformed answer: no choices")
    choice = answer.choices[0]
    message = choice.message
    calls = []
    for call in message.tool_calls or ():
        if call.type != "function":
            raise ModelError(f"{where}: a tool call of type {call.type!r} (only function)")
        calls.append(
            ToolCall(
                id=call.id,
                name=call.function.name,
                arguments=_arguments(call.function.arguments, where),
            )
        )
    usage = answer.usage
    return ModelResponse(
        text=message.content or message.refusal or "",
        tool_calls=tuple(calls),
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        ),
        model=answer.model or model,
        stop_reason=_STOP.get(choice.finish_reason, "tool_use" if calls else "end"),
    )


def openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The request's conversation as Chat Completions messages."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(message) for message in request.messages)
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


def _arguments(raw: str | None, where: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ModelError(f"{where}: tool call arguments are not JSON") from None
    if not isinstance(parsed, dict):
        raise ModelError(f"{where}: tool call arguments are not a JSON object")
    return parsed
