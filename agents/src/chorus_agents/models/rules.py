"""Request rules the model APIs enforce and their SDKs' request types do not.

The SDKs type a request's fields, not how they relate: a tool result that answers no call
type-checks, and the API refuses it with a 400 after a round trip (a paid one, for some
gateways). Each provider runs its checker before sending; a broken rule is a
:class:`~chorus_agents.models.base.ModelError` (not retryable) naming the message and field.

Chat Completions (https://platform.openai.com/docs/api-reference/chat/create, ``messages``
and ``tools``):

1. A ``tool`` message answers a ``tool_calls`` entry of the assistant message before it
   (the API: "messages with role 'tool' must be a response to a preceding message with
   'tool_calls'").
2. An assistant message with ``tool_calls`` is followed by a ``tool`` message for each of
   its ids before any other message (the API: "An assistant message with 'tool_calls' must
   be followed by tool messages responding to each 'tool_call_id'").
3. An assistant message has ``content`` or ``tool_calls``.
4. A function's name is 1 to 64 letters, digits, ``_`` or ``-`` (``tools[].function.name``;
   MCP allows more, dots included).

Messages (https://docs.anthropic.com/en/api/messages, ``messages`` and ``tools``, and the
tool use guide's "handling tool use and tool result content blocks"):

1. Every message has content: at least one block, and no empty text block ("all messages
   must have non-empty content except for the optional final assistant message").
2. A ``tool_result`` block answers a ``tool_use`` block of the assistant message just before
   ("Each tool_result block must have a corresponding tool_use block in the previous
   message").
3. Every ``tool_use`` block is answered by a ``tool_result`` in the message right after it
   ("tool_use ids were found without tool_result blocks immediately after").
4. In a user message, the ``tool_result`` blocks come before any other block.
5. A tool's name is 1 to 64 letters, digits, ``_`` or ``-`` (``tools[].name``).

Gemini ``generateContent`` (https://ai.google.dev/api/generate-content, ``contents``; and
https://ai.google.dev/api/caching#FunctionDeclaration for names):

1. Every content has a part at least, and no empty text part.
2. The ``function_response`` parts of a user turn answer the ``function_call`` parts of the
   model turn just before, one each, by name (the API: "the number of function response
   parts is equal to the number of function call parts of the function call turn").
3. A model turn with function calls is followed by the user turn that answers them.
4. A function's name starts with a letter or ``_`` and holds at most 64 letters, digits,
   ``_``, ``.``, ``:`` or ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chorus_agents.models.base import ModelError

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
GEMINI_FUNCTION_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")


def check_openai(
    messages: Sequence[Mapping[str, Any]],
    where: str,
    tools: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Raises a :class:`ModelError` naming the first broken rule (see the module docstring)."""
    open_calls: list[str] = []  # ids the last assistant turn asked for, not yet answered
    for index, message in enumerate(messages):
        at = f"{where}: messages[{index}]"
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                raise ModelError(
                    f"{at}.tool_call_id: {call_id!r} answers no tool call of the assistant "
                    "message before it (rule 1)"
                )
            open_calls.remove(call_id)
            continue
        if open_calls:
            raise ModelError(
                f"{at}: the tool calls {open_calls} of the assistant message before it have no "
                "tool message yet (rule 2)"
            )
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if not calls and not message.get("content"):
                raise ModelError(
                    f"{at}.content: an assistant message needs content or tool calls (rule 3)"
                )
            open_calls = [str(call.get("id")) for call in calls]
    if open_calls:
        raise ModelError(
            f"{where}: messages[{len(messages) - 1}]: the tool calls {open_calls} have no tool "
            "message (rule 2)"
        )
    for index, tool in enumerate(tools):
        name = str((tool.get("function") or {}).get("name", ""))
        if FUNCTION_NAME.fullmatch(name) is None:
            raise ModelError(
                f"{where}: tools[{index}].function.name: {name!r} is not 1 to 64 letters, digits, "
                "'_' or '-' (rule 4)"
            )


def check_anthropic(
    messages: Sequence[Mapping[str, Any]],
    where: str,
    tools: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Raises a :class:`ModelError` naming the first broken Messages rule (see the module
    docstring)."""
    asked: list[str] = []  # the tool_use ids of the assistant message just before
    for index, message in enumerate(messages):
        at = f"{where}: messages[{index}]"
        blocks = message.get("content")
        last = index == len(messages) - 1
        if not blocks and not (last and message.get("role") == "assistant"):
            raise ModelError(f"{at}.content: a message needs at least one block (rule 1)")
        answered = []
        seen_other = False
        for n, block in enumerate(blocks or ()):
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                raise ModelError(f"{at}.content[{n}].text: an empty text block (rule 1)")
            if kind == "tool_result":
                if seen_other:
                    raise ModelError(
                        f"{at}.content[{n}]: a tool_result after another block (rule 4)"
                    )
                if block.get("tool_use_id") not in asked:
                    raise ModelError(
                        f"{at}.content[{n}].tool_use_id: {block.get('tool_use_id')!r} answers "
                        "no tool_use of the assistant message just before (rule 2)"
                    )
                answered.append(block["tool_use_id"])
            else:
                seen_other = True
        missing = [call for call in asked if call not in answered]
        if missing:
            raise ModelError(f"{at}: the tool_use ids {missing} have no tool_result here (rule 3)")
        asked = [
            str(block.get("id"))
            for block in blocks or ()
            if message.get("role") == "assistant" and block.get("type") == "tool_use"
        ]
    if asked:
        raise ModelError(
            f"{where}: messages[{len(messages) - 1}]: the tool_use ids {asked} have no "
            "tool_result (rule 3)"
        )
    for index, tool in enumerate(tools):
        name = str(tool.get("name", ""))
        if FUNCTION_NAME.fullmatch(name) is None:
            raise ModelError(
                f"{where}: tools[{index}].name: {name!r} is not 1 to 64 letters, digits, "
                "'_' or '-' (rule 5)"
            )


def check_gemini(contents: Sequence[Any], where: str, function_names: Sequence[str] = ()) -> None:
    """Raises a :class:`ModelError` naming the first broken ``generateContent`` rule (see
    the module docstring); ``contents`` are the SDK's ``types.Content``."""
    asked: list[str] = []  # the function names the model turn just before called
    for index, content in enumerate(contents):
        at = f"{where}: contents[{index}]"
        parts = content.parts or []
        if not parts:
            raise ModelError(f"{at}.parts: a content needs at least one part (rule 1)")
        answered: list[str] = []
        for n, part in enumerate(parts):
            if part.text is not None and not part.text and part.function_call is None:
                raise ModelError(f"{at}.parts[{n}].text: an empty text part (rule 1)")
            if part.function_response is not None:
                name = part.function_response.name or ""
                if name not in asked or answered.count(name) >= asked.count(name):
                    raise ModelError(
                        f"{at}.parts[{n}].function_response.name: {name!r} answers no "
                        "function_call of the model turn just before (rule 2)"
                    )
                answered.append(name)
        if sorted(answered) != sorted(asked):
            missing = [name for name in asked if name not in answered]
            raise ModelError(
                f"{at}: the function calls {missing} of the model turn before have no "
                "function_response here (rules 2 and 3)"
            )
        asked = [
            part.function_call.name or ""
            for part in parts
            if content.role == "model" and part.function_call is not None
        ]
    if asked:
        raise ModelError(
            f"{where}: contents[{len(contents) - 1}]: the function calls {asked} have no "
            "function_response (rule 3)"
        )
    for index, name in enumerate(function_names):
        if GEMINI_FUNCTION_NAME.fullmatch(name) is None:
            raise ModelError(
                f"{where}: tools[0].function_declarations[{index}].name: {name!r} does not "
                "start with a letter or '_', or holds more than 64 letters, digits, "
                "'_', '.', ':' or '-' (rule 4)"
            )
