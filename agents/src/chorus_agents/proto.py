"""ProtoJSON for a2a-sdk's protobuf types, typed, in one place.

protobuf ships no type information (its stubs are the separate ``types-protobuf``), so
its JSON helpers are imported here once and given the signatures the runtime uses.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format as _json_format  # type: ignore[import-untyped]
from google.protobuf.message import Message as ProtoMessage  # type: ignore[import-untyped]

__all__ = ["ParseError", "ProtoMessage", "from_dict", "from_json", "to_dict", "to_json"]

M = TypeVar("M")

ParseError: type[Exception] = _json_format.ParseError
"""Raised when JSON does not fit the message type."""


def to_dict(message: Any) -> Any:
    """``message`` as a ProtoJSON value (camelCase keys), as a2a-sdk serializes it."""
    return _json_format.MessageToDict(message)


def to_json(message: Any) -> str:
    """``message`` as compact ProtoJSON text."""
    text: str = _json_format.MessageToJson(message, indent=None)
    return text


def from_dict(value: Any, message: M, *, strict: bool = False) -> M:
    """Fills ``message`` from a ProtoJSON value; unknown fields ignored unless ``strict``."""
    _json_format.ParseDict(value, message, ignore_unknown_fields=not strict)
    return message


def from_json(text: str | bytes, message: M, *, strict: bool = False) -> M:
    """Fills ``message`` from ProtoJSON text; unknown fields ignored unless ``strict``."""
    _json_format.Parse(text, message, ignore_unknown_fields=not strict)
    return message
