"""``chorus model serve``: a scripted model served as Chat Completions, driven by the
official ``openai`` client and by the ``openai`` provider, as a separate process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from chorus_agents.dev.services.base import free_port, wait_until
from chorus_agents.models import ChatMessage, ModelRequest, OpenAIModel, ToolSpec

pytestmark = pytest.mark.integration

CHORUS = str(Path(sys.executable).with_name("chorus"))
SCRIPT = """\
latency: {fixed: 0.4}
rules:
  - when: "(?i)price of (?P<symbol>[A-Z]+)"
    call: {name: get_quote, arguments: {symbol: "{symbol}"}}
  - after: get_quote
    reply: "The price is {result}."
  - reply: "I only know prices."
"""
QUOTE: Any = {
    "type": "function",
    "function": {
        "name": "get_quote",
        "description": "A quote",
        "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = tmp_path_factory.mktemp("model") / "script.yaml"
    script.write_text(SCRIPT)
    port = free_port()
    process = subprocess.Popen(
        [
            CHORUS,
            "model",
            "serve",
            "--script",
            str(script),
            "--model",
            "desk-1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/models", timeout=1).status_code == 200,
            what="chorus model serve",
            timeout=30,
            process=process,
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_official_client_gets_a_tool_call_then_a_reply_at_the_scripts_pace(
    endpoint: str,
) -> None:
    client = openai.OpenAI(base_url=endpoint, api_key="any", max_retries=0)
    assert [m.id for m in client.models.list()] == ["desk-1"]
    ask: Any = {"role": "user", "content": "What is the price of ACME?"}
    began = time.monotonic()
    first = client.chat.completions.create(
        model="desk-1",
        messages=[ask],
        tools=[QUOTE],
        max_completion_tokens=50,
    )
    assert time.monotonic() - began >= 0.4  # the script's latency
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and first.model == "desk-1"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_quote"
    assert call.function.arguments == '{"symbol": "ACME"}'
    assert first.usage is not None and first.usage.prompt_tokens > 0

    result: Any = {"role": "tool", "tool_call_id": call.id, "content": "101.5"}
    said: Any = choice.message.model_dump(exclude_none=True)
    second = client.chat.completions.create(
        model="desk-1",
        messages=[ask, said, result],
        tools=[QUOTE],
    )
    assert second.choices[0].message.content == "The price is 101.5."
    assert second.choices[0].finish_reason == "stop"


def test_what_the_api_refuses_is_refused_naming_the_field(endpoint: str) -> None:
    client = openai.OpenAI(base_url=endpoint, api_key="any", max_retries=0)
    orphan: Any = {"role": "tool", "tool_call_id": "c1", "content": "101.5"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="desk-1",
            messages=[{"role": "user", "content": "hi"}, orphan],
        )
    assert caught.value.status_code == 400
    assert "messages[1].tool_call_id: 'c1' answers no tool call" in caught.value.message
    with pytest.raises(openai.BadRequestError, match="stream: not served"):
        client.chat.completions.create(
            model="desk-1", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    # The control: the same conversation, well formed, is answered.
    fine = client.chat.completions.create(
        model="desk-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert fine.choices[0].message.content == "I only know prices."


@pytest.mark.anyio
async def test_the_openai_provider_runs_a_tool_round_trip_against_it(endpoint: str) -> None:
    provider = OpenAIModel("desk-1", endpoint=endpoint)
    tool = ToolSpec("get_quote", "A quote", QUOTE["function"]["parameters"])
    try:
        ask = ChatMessage(role="user", text="price of ACME")
        first = await provider.complete(ModelRequest(messages=(ask,), tools=(tool,)))
        assert first.stop_reason == "tool_use" and first.model == "desk-1"
        (call,) = first.tool_calls
        assert dict(call.arguments) == {"symbol": "ACME"}
        result = ChatMessage(role="tool", text="101.5", tool_call_id=call.id)
        second = await provider.complete(
            ModelRequest(messages=(ask, first.as_message(), result), tools=(tool,))
        )
        assert (second.text, second.stop_reason) == ("The price is 101.5.", "end")
    finally:
        await provider.aclose()
