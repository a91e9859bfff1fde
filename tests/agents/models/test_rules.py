"""The Chat Completions request rules: each bad request refused, naming its field, and the
same request put right passes (so each check can fail, and only for its reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from chorus_agents.models import ChatMessage, ModelError, ModelRequest, ToolCall, ToolSpec
from chorus_agents.models.openai import openai_messages
from chorus_agents.models.rules import check_anthropic, check_gemini, check_openai
from google.genai import types

pytestmark = pytest.mark.unit

ASK = {"role": "user", "content": "price of AAPL?"}
CALL: dict[str, Any] = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_quote", "arguments": "{}"}}
    ],
}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "189.20"}
TOOL = {"type": "function", "function": {"name": "get_quote", "parameters": {}}}


def refused_by(check: Callable[..., None], messages: Any, tools: Sequence[Any] = ()) -> str:
    """The refusal of ``check`` (one of the three checkers): not retryable, its message."""
    with pytest.raises(ModelError) as caught:
        check(messages, "model m", tools)
    assert not caught.value.retryable
    return str(caught.value)


def refused(messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()) -> str:
    return refused_by(check_openai, messages, tools)


def test_a_well_formed_conversation_passes() -> None:
    check_openai([ASK, CALL, RESULT, {"role": "assistant", "content": "189.20"}], "m", [TOOL])


def test_rule_1_a_tool_result_must_answer_a_call_of_the_turn_before() -> None:
    assert "messages[1].tool_call_id: 'c1' answers no tool call" in refused([ASK, RESULT])
    assert "messages[2].tool_call_id: 'c9'" in refused(
        [ASK, CALL, {**RESULT, "tool_call_id": "c9"}]
    )
    check_openai([ASK, CALL, RESULT], "m")  # the control: the same result after its call


def test_rule_2_every_call_is_answered_before_the_next_message() -> None:
    assert "messages[2]: the tool calls ['c1']" in refused([ASK, CALL, ASK])
    assert "the tool calls ['c1'] have no tool message" in refused([ASK, CALL])
    two = {**CALL, "tool_calls": [*CALL["tool_calls"], {**CALL["tool_calls"][0], "id": "c2"}]}
    assert "['c2']" in refused([ASK, two, RESULT, ASK])
    check_openai([ASK, two, RESULT, {**RESULT, "tool_call_id": "c2"}, ASK], "m")


def test_rule_3_an_assistant_message_has_content_or_calls() -> None:
    empty = {"role": "assistant", "content": ""}
    assert "messages[1].content: an assistant message needs content" in refused([ASK, empty])
    check_openai([ASK, {"role": "assistant", "content": "hi"}], "m")


def test_rule_4_function_names_follow_the_api_pattern() -> None:
    dotted = {"type": "function", "function": {"name": "exchange.get_quote"}}
    assert "tools[1].function.name: 'exchange.get_quote'" in refused([ASK], [TOOL, dotted])
    long = {"type": "function", "function": {"name": "x" * 65}}
    assert "tools[0].function.name" in refused([ASK], [long])
    check_openai([ASK], "m", [TOOL, {"type": "function", "function": {"name": "x" * 64}}])


def test_the_providers_own_mapping_of_a_tool_round_trip_passes_the_rules() -> None:
    request = ModelRequest(
        messages=(
            ChatMessage(role="user", text="price?"),
            ChatMessage(role="assistant", tool_calls=(ToolCall("c1", "get_quote", {}),)),
            ChatMessage(role="tool", text="refused", tool_call_id="c1", is_error=True),
        ),
        system="You trade.",
        tools=(ToolSpec("get_quote"),),
    )
    check_openai(openai_messages(request), "m")


# Messages (Anthropic)

Q: dict[str, Any] = {"role": "user", "content": [{"type": "text", "text": "price of AAPL?"}]}
USE: dict[str, Any] = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "t1", "name": "get_quote", "input": {}}],
}
ANSWER: dict[str, Any] = {
    "role": "user",
    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "1"}],
}


def refused_by_messages(
    messages: list[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()
) -> str:
    return refused_by(check_anthropic, messages, tools)


def test_messages_rule_1_every_message_has_content() -> None:
    assert "messages[0].content: a message needs at least one block" in refused_by_messages(
        [{"role": "user", "content": []}]
    )
    empty_text = {"role": "user", "content": [{"type": "text", "text": ""}]}
    assert "messages[0].content[0].text: an empty text block" in refused_by_messages([empty_text])
    # The control: a last assistant message may be empty (a prefill); others may not.
    check_anthropic([Q, {"role": "assistant", "content": []}], "m")


def test_messages_rules_2_and_3_results_answer_the_calls_just_before() -> None:
    stray = {**ANSWER, "content": [{**ANSWER["content"][0], "tool_use_id": "t9"}]}
    assert "content[0].tool_use_id: 't9' answers no tool_use" in refused_by_messages(
        [Q, USE, stray]
    )
    assert "the tool_use ids ['t1'] have no tool_result here" in refused_by_messages([Q, USE, Q])
    assert "the tool_use ids ['t1'] have no tool_result" in refused_by_messages([Q, USE])
    check_anthropic([Q, USE, ANSWER], "m")


def test_messages_rule_4_tool_results_come_first() -> None:
    late = {"role": "user", "content": [Q["content"][0], ANSWER["content"][0]]}
    assert "content[1]: a tool_result after another block" in refused_by_messages([Q, USE, late])
    check_anthropic([Q, USE, {"role": "user", "content": [*ANSWER["content"], *Q["content"]]}], "m")


def test_messages_rule_5_tool_names() -> None:
    assert "tools[0].name: 'exchange.get_quote'" in refused_by_messages(
        [Q], [{"name": "exchange.get_quote", "input_schema": {}}]
    )
    check_anthropic([Q], "m", [{"name": "get_quote", "input_schema": {}}])


def test_the_anthropic_mapping_of_a_failed_tool_round_trip_passes_the_rules() -> None:
    from chorus_agents.models.anthropic import _messages

    messages = _messages(
        (
            ChatMessage(role="user", text="price?"),
            ChatMessage(role="assistant", tool_calls=(ToolCall("t1", "get_quote", {}),)),
            ChatMessage(role="tool", text="closed", tool_call_id="t1", is_error=True),
            ChatMessage(role="user", text="and now?"),
        )
    )
    check_anthropic(messages, "m")


# Gemini generateContent


def user_text(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


CALLS = types.Content(
    role="model",
    parts=[types.Part(function_call=types.FunctionCall(id="f1", name="get_quote", args={}))],
)


def reply(name: str = "get_quote") -> types.Content:
    response = types.FunctionResponse(id="f1", name=name, response={"output": "1"})
    return types.Content(role="user", parts=[types.Part(function_response=response)])


def refused_by_gemini(contents: list[types.Content], names: Sequence[str] = ()) -> str:
    return refused_by(check_gemini, contents, names)


def test_gemini_rule_1_every_content_has_a_part_and_no_empty_text() -> None:
    empty = types.Content(role="user", parts=[])
    assert "contents[0].parts: a content needs at least one part" in refused_by_gemini([empty])
    assert "contents[0].parts[0].text: an empty text part" in refused_by_gemini([user_text("")])
    check_gemini([user_text("hi")], "m")


def test_gemini_rules_2_and_3_responses_answer_the_calls_just_before() -> None:
    assert "function_response.name: 'get_price' answers no function_call" in refused_by_gemini(
        [user_text("hi"), CALLS, reply("get_price")]
    )
    assert "function_response.name: 'get_quote'" in refused_by_gemini([user_text("hi"), reply()])
    assert "the function calls ['get_quote'] of the model turn before" in refused_by_gemini(
        [user_text("hi"), CALLS, user_text("and?")]
    )
    assert "the function calls ['get_quote'] have no function_response" in refused_by_gemini(
        [user_text("hi"), CALLS]
    )
    check_gemini([user_text("hi"), CALLS, reply()], "m")


def test_gemini_rule_4_function_names() -> None:
    assert "function_declarations[0].name: '1quote'" in refused_by_gemini(
        [user_text("hi")], ["1quote"]
    )
    assert "function_declarations[0].name" in refused_by_gemini([user_text("hi")], ["x" * 65])
    check_gemini([user_text("hi")], "m", ["exchange.get_quote", "_x", "a:b-c"])


def test_the_gemini_mapping_of_a_failed_tool_round_trip_passes_the_rules() -> None:
    from chorus_agents.models.gemini import gemini_contents

    contents = gemini_contents(
        (
            ChatMessage(role="user", text="price?"),
            ChatMessage(role="assistant", tool_calls=(ToolCall("f1", "get_quote", {}),)),
            ChatMessage(role="tool", text="closed", tool_call_id="f1", is_error=True),
            ChatMessage(role="user", text="and now?"),
        )
    )
    check_gemini(contents, "m")
    assert contents[2].parts is not None and contents[2].parts[0].function_response is not None
    assert contents[2].parts[0].function_response.name == "get_quote"  # named after its call
