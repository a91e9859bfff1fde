"""The ``gemini`` provider (google-genai) against a local server speaking ``generateContent``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chorus_agents.models import (
    ChatMessage,
    GeminiModel,
    ModelError,
    ModelRequest,
    ToolSpec,
    Usage,
    provider_for,
)
from chorus_api.runtime import RuntimeModel

from tests.agents.models.wire import KEY, Seen, gemini_app, serve

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

QUOTE = ToolSpec(
    name="get_quote",
    description="A quote for a symbol",
    input_schema={"type": "object", "properties": {"symbol": {"type": "string"}}},
)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    async with serve(gemini_app(seen)) as url:
        yield url, seen


@pytest.fixture
async def model(endpoint: tuple[str, Seen]) -> AsyncIterator[GeminiModel]:
    provider = GeminiModel("gemini-test", api_key=KEY, endpoint=endpoint[0])
    yield provider
    await provider.aclose()


async def test_function_calls_and_responses_round_trip(
    model: GeminiModel, endpoint: tuple[str, Seen]
) -> None:
    _, seen = endpoint
    ask = ChatMessage(role="user", text="price of AAPL?")
    first = await model.complete(
        ModelRequest(messages=(ask,), system="You trade.", tools=(QUOTE,), max_tokens=66)
    )
    assert first.stop_reason == "tool_use" and first.text == ""
    (call,) = first.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == ("fc_1", "get_quote", {"symbol": "AAPL"})
    assert first.usage == Usage(input_tokens=3, output_tokens=5)
    assert first.model == "gemini-test-001"

    headers, body = seen.requests[0]
    assert headers["x-goog-api-key"] == KEY
    assert body["contents"] == [{"role": "user", "parts": [{"text": "price of AAPL?"}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "You trade."}]
    assert body["generationConfig"]["maxOutputTokens"] == 66
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_quote",
                    "description": "A quote for a symbol",
                    # The SDK writes this field in snake case (proto JSON takes either).
                    "parameters_json_schema": dict(QUOTE.input_schema),
                }
            ]
        }
    ]

    failed = ChatMessage(role="tool", text="closed", tool_call_id="fc_1", is_error=True)
    second = await model.complete(
        ModelRequest(messages=(ask, first.as_message(), failed), tools=(QUOTE,))
    )
    assert (second.text, second.stop_reason) == ("The answer is closed.", "end")
    _, body = seen.requests[1]
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"id": "fc_1", "name": "get_quote", "args": {"symbol": "AAPL"}}}
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "fc_1",
                        "name": "get_quote",
                        "response": {"error": "closed"},
                    }
                }
            ],
        },
    ]


async def test_a_rate_limit_is_retryable_and_a_bad_request_is_not(model: GeminiModel) -> None:
    with pytest.raises(ModelError, match="gemini/gemini-test: HTTP 429") as limited:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="rate limit"),)))
    assert limited.value.retryable
    with pytest.raises(ModelError, match="HTTP 400: Request contains an invalid") as invalid:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="invalid"),)))
    assert not invalid.value.retryable


async def test_a_wrong_key_is_not_retryable_and_not_in_the_message(
    endpoint: tuple[str, Seen],
) -> None:
    provider = GeminiModel("gemini-test", api_key="wrong-secret", endpoint=endpoint[0])
    try:
        with pytest.raises(ModelError, match="API key not valid") as caught:
            await provider.complete(ModelRequest(messages=(ChatMessage(role="user", text="hi"),)))
    finally:
        await provider.aclose()
    assert not caught.value.retryable
    assert "wrong-secret" not in str(caught.value) and "wrong-secret" not in repr(provider)


async def test_an_unreachable_endpoint_is_retryable() -> None:
    from tests.agents.tools.mcp_server import free_port

    provider = GeminiModel("gemini-test", api_key=KEY, endpoint=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ModelError, match="cannot reach") as caught:
            await provider.complete(ModelRequest(messages=(ChatMessage(role="user", text="hi"),)))
    finally:
        await provider.aclose()
    assert caught.value.retryable


async def test_the_config_builds_the_provider_with_its_key(
    endpoint: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_KEY_FOR_TEST", KEY)
    provider = provider_for(
        RuntimeModel.model_validate(
            {
                "provider": "gemini",
                "name": "gemini-test",
                "endpoint": endpoint[0],
                "apiKeyEnv": "GEMINI_KEY_FOR_TEST",
            }
        )
    )
    assert isinstance(provider, GeminiModel)
    try:
        answer = await provider.complete(
            ModelRequest(messages=(ChatMessage(role="user", text="hello"),))
        )
    finally:
        await provider.aclose()
    assert answer.text == "echo hello"
