"""The scripted model: deterministic turns from a script, tool calls included."""

from __future__ import annotations

from pathlib import Path

import pytest
from chorus_agents.models import (
    ChatMessage,
    ModelError,
    ModelRequest,
    ScriptedModel,
    ScriptError,
    ToolSpec,
    Usage,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

SCRIPT = """
- when: "(?i)price of (?P<symbol>[A-Z]+)"
  call: {name: get_quote, arguments: {symbol: "{symbol}", venue: XNAS}}
- after: get_quote
  reply: "The price is {result}."
- when: "^hello"
  reply: "Hello to you."
"""

QUOTE = ToolSpec(name="get_quote", description="a quote", input_schema={"type": "object"})


@pytest.fixture
def model(tmp_path: Path) -> ScriptedModel:
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT)
    return ScriptedModel.from_file(path)


async def test_a_matching_rule_calls_a_tool_then_answers_with_its_result(
    model: ScriptedModel,
) -> None:
    ask = ChatMessage(role="user", text="What is the price of AAPL?")
    first = await model.complete(ModelRequest(messages=(ask,), tools=(QUOTE,), system="be brief"))

    assert first.stop_reason == "tool_use"
    (call,) = first.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == (
        "call-1",
        "get_quote",
        {"symbol": "AAPL", "venue": "XNAS"},
    )

    result = ChatMessage(role="tool", text="189.20", tool_call_id=call.id)
    second = await model.complete(
        ModelRequest(messages=(ask, first.as_message(), result), tools=(QUOTE,))
    )

    assert (second.text, second.tool_calls, second.stop_reason) == (
        "The price is 189.20.",
        (),
        "end",
    )
    assert second.usage.output_tokens == 4


async def test_the_same_conversation_gets_the_same_turn(model: ScriptedModel) -> None:
    request = ModelRequest(messages=(ChatMessage(role="user", text="hello there"),))
    answers = [await model.complete(request) for _ in range(3)]
    assert {a.text for a in answers} == {"Hello to you."}
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].usage == Usage(input_tokens=2, output_tokens=3)


async def test_without_a_matching_rule_the_model_echoes(model: ScriptedModel) -> None:
    answer = await model.complete(
        ModelRequest(messages=(ChatMessage(role="user", text="good night"),))
    )
    assert answer.text == "scripted: good night"
    assert await ScriptedModel().complete(
        ModelRequest(messages=(ChatMessage(role="user", text="x"),))
    )


async def test_a_call_to_a_tool_not_offered_is_an_error(model: ScriptedModel) -> None:
    with pytest.raises(ModelError, match="calls get_quote, which the request does not offer"):
        await model.complete(
            ModelRequest(messages=(ChatMessage(role="user", text="price of MSFT"),))
        )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"reply": "x"}, "a list of rules"),
        (["x"], r"script\[0\]: a rule is a mapping"),
        ([{"when": "x"}], r"script\[0\]: a rule needs reply or call"),
        ([{"reply": "x", "then": 1}], r"unknown keys \['then'\]"),
        ([{"when": "(", "reply": "x"}], r"script\[0\].when: not a regular expression"),
        ([{"call": {"arguments": {}}}], r"script\[0\].call: needs a name"),
    ],
)
def test_a_bad_script_names_the_rule(document: object, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        ScriptedModel.from_document(document)


def test_the_runtime_config_picks_the_scripted_model(tmp_path: Path) -> None:
    from chorus_agents.models import ModelConfigError, provider_for
    from chorus_api.runtime import RuntimeModel

    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT)
    model = provider_for(
        RuntimeModel.model_validate({"provider": "scripted", "scriptFile": str(path)})
    )
    assert isinstance(model, ScriptedModel) and len(model.rules) == 3
    assert isinstance(
        provider_for(RuntimeModel.model_validate({"provider": "scripted"})), ScriptedModel
    )
    with pytest.raises(ModelConfigError, match="openai/gpt-x: needs an API key"):
        provider_for(RuntimeModel.model_validate({"provider": "openai", "name": "gpt-x"}))
