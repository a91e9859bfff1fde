"""The OpenAI-compatible provider against a local server speaking Chat Completions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chorus_agents.models import (
    ChatMessage,
    ModelError,
    ModelRequest,
    OpenAIModel,
    ToolCall,
    ToolSpec,
    Usage,
    provider_for,
)
from chorus_api.runtime import RuntimeModel

from tests.agents.models.wire import KEY, Seen, openai_app, serve

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

QUOTE = ToolSpec(
    name="get_quote",
    description="A quote for a symbol",
    input_schema={"type": "object", "properties": {"symbol": {"type": "string"}}},
)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    async with serve(openai_app(seen)) as url:
        yield f"{url}/v1", seen


@pytest.fixture
async def model(endpoint: tuple[str, Seen]) -> AsyncIterator[OpenAIModel]:
    provider = OpenAIModel("gpt-test", api_key=KEY, endpoint=endpoint[0])
    yield provider
    await provider.aclose()


async def test_tools_and_tool_calls_round_trip(
    model: OpenAIModel, endpoint: tuple[str, Seen]
) -> None:
    _, seen = endpoint
    ask = ChatMessage(role="user", text="price of AAPL?")
    first = await model.complete(
        ModelRequest(messages=(ask,), system="You trade.", tools=(QUOTE,), max_tokens=99)
    )
    assert first.stop_reason == "tool_use" and first.text == ""
    (call,) = first.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == (
        "call_abc",
        "get_quote",
        {"symbol": "AAPL"},
    )
    assert first.model == "gpt-test-2026"

    headers, body = seen.requests[0]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "gpt-test",
        "max_completion_tokens": 99,
        "messages": [
            {"role": "system", "content": "You trade."},
            {"role": "user", "content": "price of AAPL?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_quote",
                    "description": "A quote for a symbol",
                    "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}},
                },
            }
        ],
    }

    result = ChatMessage(role="tool", text="189.20", tool_call_id="call_abc")
    second = await model.complete(
        ModelRequest(messages=(ask, first.as_message(), result), tools=(QUOTE,))
    )
    assert (second.text, second.tool_calls, second.stop_reason) == (
        "The answer is 189.20.",
        (),
        "end",
    )
    assert second.usage == Usage(input_tokens=3 + 1, output_tokens=7)
    _, body = seen.requests[1]
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_quote", "arguments": '{"symbol": "AAPL"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "189.20"},
    ]


async def test_a_failed_tool_result_is_marked_for_the_model(
    model: OpenAIModel, endpoint: tuple[str, Seen]
) -> None:
    ask = ChatMessage(role="user", text="price of AAPL?")
    call = ChatMessage(role="assistant", tool_calls=(ToolCall("c1", "get_quote", {}),))
    failed = ChatMessage(role="tool", text="refused", tool_call_id="c1", is_error=True)
    answer = await model.complete(ModelRequest(messages=(ask, call, failed), tools=(QUOTE,)))
    assert answer.text == "The answer is ERROR: refused."
    assert endpoint[1].requests[0][1]["messages"][-1]["content"] == "ERROR: refused"


async def test_a_rate_limit_is_retryable_and_a_bad_request_is_not(model: OpenAIModel) -> None:
    with pytest.raises(
        ModelError, match=r"openai/gpt-test: HTTP 429: Rate limit reached"
    ) as limited:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="rate limit"),)))
    assert limited.value.retryable
    with pytest.raises(ModelError, match=r"HTTP 400: Invalid value for 'messages'") as invalid:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="invalid"),)))
    assert not invalid.value.retryable


async def test_a_wrong_key_is_not_retryable_and_not_in_the_message(
    endpoint: tuple[str, Seen],
) -> None:
    provider = OpenAIModel("gpt-test", api_key="wrong-secret", endpoint=endpoint[0])
    try:
        with pytest.raises(ModelError, match="HTTP 401: Incorrect API key") as caught:
            await provider.complete(ModelRequest(messages=(ChatMessage(role="user", text="hi"),)))
    finally:
        await provider.aclose()
    assert not caught.value.retryable
    assert "wrong-secret" not in str(caught.value) and "wrong-secret" not in repr(provider)


async def test_an_unreachable_endpoint_is_retryable() -> None:
    from tests.agents.tools.mcp_server import free_port

    provider = OpenAIModel("gpt-test", endpoint=f"http://127.0.0.1:{free_port()}/v1")
    try:
        with pytest.raises(ModelError, match="cannot reach") as caught:
            await provider.complete(ModelRequest(messages=(ChatMessage(role="user", text="hi"),)))
    finally:
        await provider.aclose()
    assert caught.value.retryable


async def test_the_config_builds_the_provider_with_the_key_from_a_file(
    endpoint: tuple[str, Seen], tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    provider = provider_for(
        RuntimeModel.model_validate(
            {
                "provider": "openai",
                "name": "gpt-test",
                "endpoint": endpoint[0],
                "apiKeyFile": str(key_file),
            }
        )
    )
    assert isinstance(provider, OpenAIModel)
    try:
        answer = await provider.complete(
            ModelRequest(messages=(ChatMessage(role="user", text="hello"),))
        )
    finally:
        await provider.aclose()
    assert answer.text == "echo hello"
    assert endpoint[1].requests[0][0]["authorization"] == f"Bearer {KEY}"


async def test_azure_openai_through_the_api_version(
    endpoint: tuple[str, Seen], tmp_path: Path
) -> None:
    """With ``apiVersion`` the SDK's Azure client calls the deployment named like the model,
    the key in ``api-key``; without the endpoint the spec is refused naming the field."""
    url, seen = endpoint
    resource = url.removesuffix("/v1")
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    provider = provider_for(
        RuntimeModel.model_validate(
            {
                "provider": "openai",
                "name": "desk-deployment",
                "endpoint": resource,
                "apiVersion": "2024-10-21",
                "apiKeyFile": str(key_file),
            }
        )
    )
    try:
        answer = await provider.complete(
            ModelRequest(messages=(ChatMessage(role="user", text="hello"),))
        )
    finally:
        await provider.aclose()  # type: ignore[attr-defined]
    assert answer.text == "echo hello"
    assert seen.urls[-1] == (
        f"{resource}/openai/deployments/desk-deployment/chat/completions?api-version=2024-10-21"
    )
    assert seen.requests[-1][0]["api-key"] == KEY

    from chorus_api.agent import ModelSpec
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"apiVersion \(Azure OpenAI\) needs provider openai"):
        ModelSpec.model_validate({"provider": "openai", "name": "d", "apiVersion": "2024-10-21"})
    with pytest.raises(ValidationError, match="apiVersion"):
        ModelSpec.model_validate(
            {"provider": "openai", "name": "d", "endpoint": resource, "apiVersion": "latest"}
        )
