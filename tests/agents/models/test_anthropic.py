"""The Anthropic provider against a local server speaking the Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chorus_agents.models import (
    AnthropicModel,
    ChatMessage,
    ModelConfigError,
    ModelError,
    ModelRequest,
    ToolSpec,
    Usage,
    provider_for,
)
from chorus_api.runtime import RuntimeModel

from tests.agents.models.wire import KEY, Seen, anthropic_app, serve

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

QUOTE = ToolSpec(
    name="get_quote",
    description="A quote for a symbol",
    input_schema={"type": "object", "properties": {"symbol": {"type": "string"}}},
)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    async with serve(anthropic_app(seen)) as url:
        yield url, seen


@pytest.fixture
async def model(endpoint: tuple[str, Seen]) -> AsyncIterator[AnthropicModel]:
    provider = AnthropicModel("claude-test", api_key=KEY, endpoint=endpoint[0])
    yield provider
    await provider.aclose()


async def test_tool_use_and_tool_result_blocks_round_trip(
    model: AnthropicModel, endpoint: tuple[str, Seen]
) -> None:
    _, seen = endpoint
    ask = ChatMessage(role="user", text="price of AAPL?")
    first = await model.complete(
        ModelRequest(messages=(ask,), system="You trade.", tools=(QUOTE,), max_tokens=77)
    )
    assert (first.text, first.stop_reason) == ("Let me look that up.", "tool_use")
    (call,) = first.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == (
        "toolu_01",
        "get_quote",
        {"symbol": "AAPL"},
    )
    assert first.usage == Usage(input_tokens=21, output_tokens=9)

    headers, body = seen.requests[0]
    # The SDK decides how the key travels (this version: a bearer token) and the API version.
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "")[len("Bearer ") :])
    assert headers["anthropic-version"]
    assert body == {
        "model": "claude-test",
        "max_tokens": 77,
        "system": "You trade.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "price of AAPL?"}]}],
        "tools": [
            {
                "name": "get_quote",
                "description": "A quote for a symbol",
                "input_schema": {"type": "object", "properties": {"symbol": {"type": "string"}}},
            }
        ],
    }

    # The one call the model made, answered as failed (a result for a call it never made
    # is refused before sending: tests/agents/models/test_rules.py).
    results = (ChatMessage(role="tool", text="closed", tool_call_id="toolu_01", is_error=True),)
    second = await model.complete(ModelRequest(messages=(ask, first.as_message(), *results)))
    assert (second.text, second.stop_reason) == ("The answer is closed.", "end")
    _, body = seen.requests[1]
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look that up."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_quote",
                    "input": {"symbol": "AAPL"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "closed",
                    "is_error": True,
                },
            ],
        },
    ]


async def test_a_rate_limit_is_retryable_and_a_bad_request_is_not(model: AnthropicModel) -> None:
    with pytest.raises(
        ModelError, match=r"anthropic/claude-test: HTTP 429: .*rate limit"
    ) as limited:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="rate limit"),)))
    assert limited.value.retryable
    with pytest.raises(ModelError, match=r"HTTP 400: messages: text content blocks") as invalid:
        await model.complete(ModelRequest(messages=(ChatMessage(role="user", text="invalid"),)))
    assert not invalid.value.retryable


async def test_the_config_takes_the_key_from_the_environment(
    endpoint: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RuntimeModel.model_validate(
        {
            "provider": "anthropic",
            "name": "claude-test",
            "endpoint": endpoint[0],
            "apiKeyEnv": "CHORUS_TEST_KEY",
        }
    )
    with pytest.raises(ModelConfigError, match=r"CHORUS_TEST_KEY \(apiKeyEnv\) is not set"):
        provider_for(config)
    monkeypatch.setenv("CHORUS_TEST_KEY", KEY)
    provider = provider_for(config)
    assert isinstance(provider, AnthropicModel)
    try:
        answer = await provider.complete(
            ModelRequest(messages=(ChatMessage(role="user", text="hi"),))
        )
    finally:
        await provider.aclose()
    assert answer.text == "echo hi"
    with pytest.raises(ModelConfigError, match="anthropic/claude-x: needs an API key"):
        provider_for(RuntimeModel.model_validate({"provider": "anthropic", "name": "claude-x"}))
