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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chorus_agents.models.base import ModelError

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


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
