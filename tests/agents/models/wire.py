"""Local servers speaking the OpenAI Chat Completions, Anthropic Messages and Gemini
``generateContent`` wire formats.

They answer like the real APIs do, from what they are sent: an unknown key is a 401, a
message containing ``rate limit`` a 429 and ``invalid`` a 400 (each with the API's error
body), a conversation ending in a tool result gets a final text quoting it, and one
offering tools gets a call of the first tool. Every request (headers and JSON body) is
kept in ``requests`` for the test to assert its shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEY = "test-key-123"


@dataclass
class Seen:
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def _words(value: Any) -> int:
    return len(str(value).split())


def openai_app(seen: Seen) -> Starlette:
    """Chat Completions as its reference gives them: the answer follows
    https://platform.openai.com/docs/api-reference/chat/object and the errors
    https://platform.openai.com/docs/guides/error-codes (``error.message``, ``type``,
    ``code``); the provider parses them with the SDK's own response models."""

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        seen.requests.append((dict(request.headers), body))
        seen.urls.append(str(request.url))
        # Azure OpenAI (https://learn.microsoft.com/azure/ai-services/openai/reference):
        # the deployment in the path, ?api-version=, the key in an api-key header.
        azure = "deployment" in request.path_params
        if azure and not request.query_params.get("api-version"):
            return JSONResponse(
                {"error": {"code": "404", "message": "Resource not found"}}, status_code=404
            )
        key = request.headers.get("api-key") if azure else _bearer(request)
        if key != KEY:
            return JSONResponse(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                    }
                },
                status_code=401,
            )
        last = body["messages"][-1]
        text = str(last.get("content") or "")
        if "rate limit" in text:
            return JSONResponse(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status_code=429,
                headers={"retry-after": "1"},
            )
        if "server error" in text:
            return JSONResponse(
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                    }
                },
                status_code=500,
            )
        if "invalid" in text:
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid value for 'messages'",
                        "type": "invalid_request_error",
                    }
                },
                status_code=400,
            )
        message: dict[str, Any]
        if "please refuse" in text:
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
            finish = "stop"
        elif "a long one" in text:
            message = {"role": "assistant", "content": "A partial"}
            finish = "length"
        elif last["role"] == "tool":
            message = {"role": "assistant", "content": f"The answer is {text}."}
            finish = "stop"
        elif body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": name, "arguments": '{"symbol": "AAPL"}'},
                    }
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": f"echo {text}"}
            finish = "stop"
        prompt = sum(_words(m.get("content") or "") for m in body["messages"])
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"] + "-2026",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": 7,
                    "total_tokens": prompt + 7,
                },
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route(
                "/openai/deployments/{deployment}/chat/completions", completions, methods=["POST"]
            ),
        ]
    )


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


def anthropic_app(seen: Seen) -> Starlette:
    """The Messages API as its reference gives it: the answer follows
    https://docs.anthropic.com/en/api/messages (a ``message`` with content blocks, ``usage``)
    and the errors https://docs.anthropic.com/en/api/errors (``type: error``, ``error.type``,
    ``error.message``); the provider parses them with the SDK's own models."""

    def error(
        status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            {"type": "error", "error": {"type": kind, "message": message}},
            status_code=status,
            headers=headers,
        )

    async def messages(request: Request) -> JSONResponse:
        body = await request.json()
        seen.requests.append((dict(request.headers), body))
        # The SDK sends the key as x-api-key or as a bearer token, depending on its version.
        if KEY not in (request.headers.get("x-api-key"), _bearer(request)):
            return error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error(400, "invalid_request_error", "anthropic-version: required")
        last = body["messages"][-1]
        content = last["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        text = " ".join(str(b.get("text", "")) for b in blocks if b["type"] == "text")
        if "rate limit" in text:
            return error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your rate limit",
                {"retry-after": "1"},
            )
        if "server error" in text:
            return error(529, "overloaded_error", "Overloaded")
        if "invalid" in text:
            return error(
                400, "invalid_request_error", "messages: text content blocks must be non-empty"
            )
        results = [b for b in blocks if b["type"] == "tool_result"]
        out: list[dict[str, Any]]
        if "please refuse" in text:
            out = [{"type": "text", "text": "I can't help with that."}]
            stop = "refusal"
        elif "a long one" in text:
            out = [{"type": "text", "text": "A partial"}]
            stop = "max_tokens"
        elif results:
            out = [{"type": "text", "text": f"The answer is {results[-1]['content']}."}]
            stop = "end_turn"
        elif body.get("tools"):
            out = [
                {"type": "text", "text": "Let me look that up."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": body["tools"][0]["name"],
                    "input": {"symbol": "AAPL"},
                },
            ]
            stop = "tool_use"
        else:
            out = [{"type": "text", "text": f"echo {text}"}]
            stop = "end_turn"
        return JSONResponse(
            {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": out,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 21, "output_tokens": 9},
            }
        )

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def gemini_app(seen: Seen) -> Starlette:
    """Gemini's ``generateContent`` as its reference gives it: the answer follows
    https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse (candidates
    with content parts, ``finishReason``, ``usageMetadata``, ``modelVersion``) and the errors
    https://ai.google.dev/gemini-api/docs/troubleshooting (``error.code``, ``message``,
    ``status``); the provider parses them with the SDK's own models."""

    def error(code: int, status: str, message: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message, "status": status}}, status_code=code
        )

    async def generate(request: Request) -> JSONResponse:
        body = await request.json()
        seen.requests.append((dict(request.headers), body))
        if request.headers.get("x-goog-api-key") != KEY:
            return error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        last = body["contents"][-1]["parts"][-1]
        text = str(last.get("text") or "")
        if "rate limit" in text:
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
            return JSONResponse(
                {
                    "error": {
                        "code": 429,
                        "message": "Resource has been exhausted",
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [retry],
                    }
                },
                status_code=429,
            )
        if "invalid" in text:
            return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        if "server error" in text:
            return error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        parts: list[dict[str, Any]]
        finish = "STOP"
        if "please refuse" in text:
            parts, finish = [{"text": "I can't help with that."}], "SAFETY"
        elif "a long one" in text:
            parts, finish = [{"text": "A partial"}], "MAX_TOKENS"
        elif "functionResponse" in last:
            response = last["functionResponse"]["response"]
            parts = [{"text": f"The answer is {response.get('output', response.get('error'))}."}]
        elif body.get("tools"):
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            parts = [{"functionCall": {"id": "fc_1", "name": name, "args": {"symbol": "AAPL"}}}]
        else:
            parts = [{"text": f"echo {text}"}]
        prompt = sum(_words(p.get("text") or "") for c in body["contents"] for p in c["parts"])
        return JSONResponse(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": parts},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": 5,
                    "totalTokenCount": prompt + 5,
                },
                "modelVersion": request.path_params["model"] + "-001",
            }
        )

    return Starlette(
        routes=[Route("/{version}/models/{model}:generateContent", generate, methods=["POST"])]
    )


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serves ``app`` on a free loopback port; yields ``http://127.0.0.1:<port>``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
