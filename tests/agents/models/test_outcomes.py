"""What every provider makes of a refusal, a length stop, a 429 with its wait and a 5xx,
each answer shaped after its API's reference (tests/agents/models/wire.py) and parsed by the
provider's SDK; and the agent loop waiting as long as the provider asked before trying again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from chorus_agents.instructed import InstructedAgent
from chorus_agents.models import (
    AnthropicModel,
    ChatMessage,
    GeminiModel,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    OpenAIModel,
    ScriptedModel,
)
from chorus_agents.tools.base import MemoryAudit
from starlette.applications import Starlette

from tests.agents.models.wire import KEY, Seen, anthropic_app, gemini_app, openai_app, serve

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PROVIDERS: dict[str, tuple[Callable[[Seen], Starlette], Callable[[str], ModelProvider]]] = {
    "openai": (openai_app, lambda url: OpenAIModel("m", api_key=KEY, endpoint=f"{url}/v1")),
    "anthropic": (anthropic_app, lambda url: AnthropicModel("m", api_key=KEY, endpoint=url)),
    "gemini": (gemini_app, lambda url: GeminiModel("m", api_key=KEY, endpoint=url)),
}


@pytest.fixture(params=sorted(PROVIDERS))
async def model(request: pytest.FixtureRequest) -> AsyncIterator[ModelProvider]:
    app, make = PROVIDERS[request.param]
    async with serve(app(Seen())) as url:
        provider = make(url)
        yield provider
        await provider.aclose()  # type: ignore[attr-defined]


def ask(text: str) -> ModelRequest:
    return ModelRequest(messages=(ChatMessage(role="user", text=text),))


async def test_a_refusal_is_the_models_text_and_a_length_stop_says_so(
    model: ModelProvider,
) -> None:
    refused = await model.complete(ask("please refuse"))
    assert (refused.text, refused.tool_calls, refused.stop_reason) == (
        "I can't help with that.",
        (),
        "end",
    )
    cut = await model.complete(ask("a long one"))
    assert (cut.text, cut.stop_reason) == ("A partial", "max_tokens")


async def test_a_429_carries_its_wait_and_a_5xx_is_retryable(model: ModelProvider) -> None:
    with pytest.raises(ModelError) as limited:
        await model.complete(ask("rate limit"))
    assert limited.value.retryable and limited.value.retry_after == 1.0
    with pytest.raises(ModelError) as down:
        await model.complete(ask("server error"))
    assert down.value.retryable and down.value.retry_after is None
    assert "HTTP 5" in str(down.value)


class LimitedOnce(ModelProvider):
    """Answers 429 (wait 7.5 s) once, then as a one-rule script."""

    name = "limited"

    def __init__(self) -> None:
        self.calls = 0
        self.script = ScriptedModel.from_document([{"reply": "done"}])

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls == 1:
            raise ModelError("HTTP 429", retryable=True, retry_after=7.5)
        return await self.script.complete(request)


async def test_the_loop_waits_as_long_as_the_provider_asked() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    model = LimitedOnce()
    loop = InstructedAgent(
        agent="a/b", instructions="x", model=model, audit=MemoryAudit(), sleep=sleep
    )
    reply = await loop.run("go", task_id="t1")
    assert reply.text == "done" and model.calls == 2
    # The provider's 7.5 s, not the loop's own first backoff (well under a second).
    assert waits == [7.5]
