"""The ``gemini`` provider: the Gemini API's ``generateContent``, on the official
``google-genai`` SDK.

``genai.Client(api_key=...).aio.models.generate_content`` against the public API, or
``endpoint`` as the SDK's base URL (a gateway that speaks the same API). The mapping:

- the system prompt is ``config.system_instruction``; tools are one ``Tool`` of function
  declarations (``parameters_json_schema``: the MCP tool's JSON Schema as it is);
- turns are ``contents`` with roles ``user`` and ``model``: an assistant turn is ``text``
  and ``function_call`` parts; tool results are ``function_response`` parts (the call's id
  and name, ``response: {"output": text}`` or ``{"error": text}``) in the next ``user``
  content, consecutive user-side turns merged;
- the SDK's automatic function calling is off: the agent loop calls the tools (through MCP,
  with its audit and allow list), never the SDK;
- ``finish_reason`` ``MAX_TOKENS`` maps to ``max_tokens``, a turn with calls to
  ``tool_use``, anything else to ``end`` (a safety stop's text, if any, is the model's);
  ``usage_metadata.prompt_token_count`` / ``candidates_token_count`` to
  :class:`~chorus_agents.models.base.Usage`.

Before a request is sent, :func:`chorus_agents.models.rules.check_gemini` refuses what the
API would. Retries are the runtime's: the SDK retries only when asked
(``HttpOptions.retry_options``, not set); 408, 409, 429 and 5xx are retryable
:class:`~chorus_agents.models.base.ModelError`\\ s. The key is never logged.
"""

from __future__ import annotations

from typing import Any

import httpx
from google import genai
from google.genai import errors, types

from chorus_agents.models.base import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)
from chorus_agents.models.rules import check_gemini


class GeminiModel(ModelProvider):
    """A Gemini model through ``generateContent``; see the module docstring."""

    name = "gemini"

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
        # Its own httpx client: the SDK would otherwise use aiohttp when that is installed,
        # and its errors would differ with what else the image holds.
        self._http = httpx.AsyncClient(timeout=timeout)
        options = types.HttpOptions(
            base_url=endpoint, timeout=int(timeout * 1000), httpx_async_client=self._http
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    def __repr__(self) -> str:
        return f"GeminiModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        where = f"model gemini/{self.model}"
        contents = gemini_contents(request.messages)
        declarations = [
            types.FunctionDeclaration(
                name=tool.name,
                description=tool.description,
                parameters_json_schema=dict(tool.input_schema),
            )
            for tool in request.tools
        ]
        check_gemini(contents, where, [d.name or "" for d in declarations])
        config = types.GenerateContentConfig(
            system_instruction=request.system or None,
            max_output_tokens=request.max_tokens,
            tools=[types.Tool(function_declarations=declarations)] if declarations else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        try:
            answer = await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except errors.APIError as exc:
            raise ModelError.for_status(
                where, exc.code, str(exc.message or exc.status), _retry_delay(exc.details)
            ) from None
        except httpx.TimeoutException:
            raise ModelError(f"{where}: timed out", retryable=True) from None
        except httpx.TransportError as exc:
            raise ModelError(f"{where}: cannot reach the endpoint: {exc}", retryable=True) from None
        return response_of(answer, self.model, where)

    async def aclose(self) -> None:
        """Closes the SDK's client and its HTTP client."""
        await self._client.aio.aclose()
        await self._http.aclose()


def response_of(answer: types.GenerateContentResponse, model: str, where: str) -> ModelResponse:
    """The provider-neutral turn of a ``generateContent`` answer (the SDK's parsed type)."""
    if not answer.candidates:
        reason = answer.prompt_feedback.block_reason if answer.prompt_feedback else None
        raise ModelError(f"{where}: no candidate (prompt blocked: {reason})")
    candidate = answer.candidates[0]
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    calls = tuple(
        ToolCall(
            id=part.function_call.id or f"call-{index}",
            name=part.function_call.name or "",
            arguments=dict(part.function_call.args or {}),
        )
        for index, part in enumerate(parts)
        if part.function_call is not None
    )
    usage = answer.usage_metadata
    finish = candidate.finish_reason
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=Usage(
            input_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=(usage.candidates_token_count or 0) if usage else 0,
        ),
        model=answer.model_version or model,
        stop_reason="tool_use"
        if calls
        else "max_tokens"
        if finish == types.FinishReason.MAX_TOKENS
        else "end",
    )


def gemini_contents(messages: tuple[ChatMessage, ...]) -> list[types.Content]:
    """The conversation as ``contents``: user-side turns merged, tool results named after
    the call they answer."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    contents: list[types.Content] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, names)
        if contents and contents[-1].role == role and contents[-1].parts is not None:
            contents[-1].parts.extend(parts)
        else:
            contents.append(types.Content(role=role, parts=parts))
    return contents


def _parts(message: ChatMessage, names: dict[str, str]) -> list[types.Part]:
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        response: dict[str, Any] = (
            {"error": message.text} if message.is_error else {"output": message.text}
        )
        return [
            types.Part(
                function_response=types.FunctionResponse(
                    id=call_id, name=names.get(call_id, ""), response=response
                )
            )
        ]
    parts = [types.Part(text=message.text)] if message.text else []
    parts += [
        types.Part(
            function_call=types.FunctionCall(id=call.id, name=call.name, args=dict(call.arguments))
        )
        for call in message.tool_calls
    ]
    return parts


def _retry_delay(details: Any) -> float | None:
    """The ``retryDelay`` of a ``google.rpc.RetryInfo`` in the error's details (``"1s"``):
    how Gemini says how long to wait after a 429."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for detail in error.get("details") or () if isinstance(error, dict) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None
