"""``chorus model serve --script FILE``: a scripted model behind the OpenAI Chat Completions API.

Any framework that speaks that API (the ``openai`` SDK, the ``openai`` provider with an
``endpoint``, LangChain, ...) then runs offline and deterministically, at the script's
latency. Served on ``--host``:``--port``:

- ``POST /v1/chat/completions``: ``model``, ``messages`` (``system`` / ``developer`` /
  ``user`` / ``assistant`` / ``tool``; ``content`` a string or text parts), ``tools``
  (functions), ``max_completion_tokens`` or ``max_tokens``. The answer is built with the
  SDK's own ``ChatCompletion`` type. ``stream: true`` is refused (not served).
- ``GET /v1/models``: the one model, under ``--model``.

A request the API would refuse is refused the same way: HTTP 400 with
``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``, the message
naming the field (the checks of :mod:`chorus_agents.models.rules` included). No key is
needed; any is accepted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from openai.types.chat import ChatCompletion
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chorus_agents.models.base import ChatMessage, ModelError, ModelRequest, ToolCall, ToolSpec
from chorus_agents.models.rules import check_openai
from chorus_agents.models.scripted import ScriptedModel

ROLES = ("system", "developer", "user", "assistant", "tool")


class BadRequest(ValueError):
    """A request the API would refuse; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def model_request(body: Any) -> ModelRequest:
    """The provider-neutral request of a Chat Completions body; :class:`BadRequest` names
    the first field that is wrong."""
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: required, a string", "model")
    if body.get("stream"):
        raise BadRequest("stream: not served here (answers come whole)", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: required, a non-empty list", "messages")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ROLES:
            where = f"messages[{index}].role"
            raise BadRequest(f"{where}: {role!r} is not one of {', '.join(ROLES)}", where)
    try:
        check_openai(messages, "messages", _tools(body.get("tools")))
    except ModelError as exc:
        raise BadRequest(str(exc), "messages") from None
    system: list[str] = []
    turns: list[ChatMessage] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message["role"]
        text = _text(message.get("content"), f"{where}.content")
        if role in {"system", "developer"}:
            system.append(text)
        elif role == "tool":
            turns.append(ChatMessage(role="tool", text=text, tool_call_id=message["tool_call_id"]))
        elif role == "assistant":
            calls = tuple(
                _call(call, f"{where}.tool_calls[{n}]")
                for n, call in enumerate(message.get("tool_calls") or ())
            )
            turns.append(ChatMessage(role="assistant", text=text, tool_calls=calls))
        else:
            turns.append(ChatMessage(role="user", text=text))
    limit = body.get("max_completion_tokens", body.get("max_tokens", 1024))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadRequest("max_completion_tokens: a positive integer", "max_completion_tokens")
    tools = tuple(
        ToolSpec(
            name=tool["function"]["name"],
            description=str(tool["function"].get("description") or ""),
            input_schema=tool["function"].get("parameters") or {"type": "object"},
        )
        for tool in _tools(body.get("tools"))
    )
    return ModelRequest(
        messages=tuple(turns), system="\n".join(system) or None, tools=tools, max_tokens=limit
    )


def completion(answer: Any, model: str) -> ChatCompletion:
    """The model's turn as the API's answer, in the SDK's own type."""
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
        }
        for call in answer.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if calls:
        message["tool_calls"] = calls
    finish = {"tool_use": "tool_calls", "max_tokens": "length"}.get(answer.stop_reason, "stop")
    usage = answer.usage
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }
    )


def app_for(script: ScriptedModel, model: str) -> Starlette:
    """The ASGI app serving ``script`` as ``model``."""

    async def completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(BadRequest("the body is not JSON"))
        try:
            asked = model_request(body)
            answer = await script.complete(asked)
        except BadRequest as exc:
            return _error(exc)
        except ModelError as exc:  # the script calls a tool the request does not offer
            return _error(BadRequest(str(exc), "tools"))
        return JSONResponse(completion(answer, model).model_dump(mode="json", exclude_none=True))

    async def models(request: Request) -> JSONResponse:
        entry = {"id": model, "object": "model", "created": 0, "owned_by": "chorus"}
        return JSONResponse({"object": "list", "data": [entry]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


def _tools(raw: Any) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: a list", "tools")
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            raise BadRequest(f"tools[{index}].type: only function tools", f"tools[{index}].type")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise BadRequest(f"tools[{index}].function.name: required", f"tools[{index}].function")
    return raw


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise BadRequest(f"{where}[{index}]: only text parts", f"{where}[{index}]")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise BadRequest(f"{where}: a string or a list of text parts", where)


def _call(call: Any, where: str) -> ToolCall:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise BadRequest(f"{where}.function.name: required", where)
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        raise BadRequest(f"{where}.function.arguments: not JSON", where) from None
    if not isinstance(arguments, dict):
        raise BadRequest(f"{where}.function.arguments: not a JSON object", where)
    return ToolCall(id=str(call.get("id")), name=function["name"], arguments=arguments)


def _error(exc: BadRequest) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": str(exc),
                "type": "invalid_request_error",
                "param": exc.param,
                "code": None,
            }
        },
        status_code=400,
    )
