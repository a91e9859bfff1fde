"""The ``scripted`` provider: a deterministic, offline model for tests and the local demo.

A script is a list of rules, tried in order against the conversation's last message;
the first that matches answers. Same conversation in, same turn out: no randomness,
no clock, no network. A rule::

    - when: "(?i)price of (?P<symbol>[A-Z]+)"   # a regex, searched in the last user text
      call: {name: get_quote, arguments: {symbol: "{symbol}"}}
    - after: get_quote                           # matches the result of that tool
      reply: "The price is {result}."
    - reply: "I cannot help with: {text}"        # no condition: always matches

Templates take ``{text}`` (the matched message's text), ``{result}`` (a tool result's
text), and the regex's named groups; a ``call``'s string arguments are templates too.
Without a matching rule the model answers ``scripted: <text>``. Tokens are counted as
whitespace-separated words, so usage is deterministic too.

A script may also take time, as a real model does: then it is a mapping of the rules and a
latency (:mod:`chorus_agents.models.latency`, fixed or a seeded lognormal)::

    latency: {median: 2.0, sigma: 0.8, seed: 7}
    rules:
      - reply: "..."
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chorus_agents.models.base import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)
from chorus_agents.models.latency import Latency, LatencyError


class ScriptError(ValueError):
    """A script that cannot be read; the message names the rule and the field."""


@dataclass(frozen=True)
class ScriptRule:
    """One rule; see the module docstring."""

    when: re.Pattern[str] | None = None
    after: str | None = None
    reply: str | None = None
    call: tuple[str, Mapping[str, Any]] | None = None
    model: str = field(default="scripted", compare=False)

    def match(self, last: ChatMessage, calls: Mapping[str, str]) -> dict[str, str] | None:
        """The template values when this rule answers ``last``, else ``None``."""
        if self.after is not None:
            if last.role != "tool" or calls.get(last.tool_call_id or "") != self.after:
                return None
            values = {"text": last.text, "result": last.text}
        elif last.role == "tool":
            return None
        else:
            values = {"text": last.text, "result": ""}
        if self.when is not None:
            found = self.when.search(last.text)
            if found is None:
                return None
            values.update({k: v for k, v in found.groupdict().items() if v is not None})
        return values


class ScriptedModel(ModelProvider):
    """A :class:`ModelProvider` answering from a script; see the module docstring."""

    name = "scripted"

    def __init__(
        self,
        rules: Sequence[ScriptRule] = (),
        *,
        model: str = "scripted",
        latency: Latency | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.model = model
        self.latency = latency

    @classmethod
    def from_document(cls, document: Any, *, source: str = "script") -> ScriptedModel:
        """A model from a parsed YAML/JSON list of rules, or a mapping of ``rules`` and
        ``latency``."""
        latency = None
        if isinstance(document, Mapping):
            unknown = set(document) - {"rules", "latency"}
            if unknown:
                raise ScriptError(
                    f"{source}: a script is a list of rules, or a mapping of rules and "
                    f"latency: unknown keys {sorted(unknown)}"
                )
            if "latency" in document:
                try:
                    latency = Latency.parse(document["latency"], f"{source}: latency")
                except LatencyError as exc:
                    raise ScriptError(str(exc)) from None
            document = document.get("rules", [])
            source = f"{source}: rules"
        if not isinstance(document, list):
            raise ScriptError(
                f"{source}: a script is a list of rules, not {type(document).__name__}"
            )
        rules = [_rule(item, f"{source}[{index}]") for index, item in enumerate(document)]
        return cls(rules, latency=latency)

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        """A model from a YAML (or JSON) file."""
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ScriptError(f"script {path}: {exc}") from None
        return cls.from_document(document, source=f"script {path}")

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if not request.messages:
            raise ModelError("scripted: a request without messages")
        if self.latency is not None:
            await asyncio.sleep(self.latency.seconds(request))
        last = request.messages[-1]
        calls = {call.id: call.name for message in request.messages for call in message.tool_calls}
        turn = sum(1 for message in request.messages if message.role == "assistant") + 1
        text = f"scripted: {last.text}"
        tool_calls: tuple[ToolCall, ...] = ()
        for rule in self.rules:
            values = rule.match(last, calls)
            if values is None:
                continue
            text = _fill(rule.reply, values) if rule.reply is not None else ""
            if rule.call is not None:
                name, arguments = rule.call
                tool_calls = (
                    ToolCall(id=f"call-{turn}", name=name, arguments=_fill_all(arguments, values)),
                )
            break
        offered = {tool.name for tool in request.tools}
        for call in tool_calls:
            if call.name not in offered:
                raise ModelError(
                    f"scripted: the script calls {call.name}, which the request does not offer"
                )
        prompt = " ".join([request.system or "", *(m.text for m in request.messages)])
        return ModelResponse(
            text=text,
            tool_calls=tool_calls,
            usage=Usage(
                input_tokens=len(prompt.split()), output_tokens=len(text.split()) + len(tool_calls)
            ),
            model=self.model,
            stop_reason="tool_use" if tool_calls else "end",
        )


def _rule(item: Any, where: str) -> ScriptRule:
    if not isinstance(item, Mapping):
        raise ScriptError(f"{where}: a rule is a mapping")
    unknown = set(item) - {"when", "after", "reply", "call"}
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)} (when, after, reply, call)")
    if "reply" not in item and "call" not in item:
        raise ScriptError(f"{where}: a rule needs reply or call")
    when = None
    if "when" in item:
        try:
            when = re.compile(str(item["when"]))
        except re.error as exc:
            raise ScriptError(f"{where}.when: not a regular expression: {exc}") from None
    call = None
    if "call" in item:
        spec = item["call"]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ScriptError(f"{where}.call: needs a name (and arguments)")
        arguments = spec.get("arguments", {})
        if not isinstance(arguments, Mapping):
            raise ScriptError(f"{where}.call.arguments: a mapping")
        call = (spec["name"], dict(arguments))
    reply = item.get("reply")
    return ScriptRule(
        when=when,
        after=str(item["after"]) if "after" in item else None,
        reply=str(reply) if reply is not None else None,
        call=call,
    )


def _fill(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _fill_all(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, Mapping):
        return {k: _fill_all(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_all(v, values) for v in value]
    return value
