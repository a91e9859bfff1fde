"""Validation rules declared once and enforced twice: by the apiserver and in Python.

A :class:`Rule` is a CEL rule for the CRD's ``x-kubernetes-validations`` together with
the message both sides report. Models attach rules to their JSON schema with
:func:`validations` and raise :meth:`Rule.error` from their Python validators, so the
operator and the local runner refuse a bad spec with the same words as the apiserver.

Errors raised here are pydantic ``PydanticCustomError`` of type ``chorus_rule``; their
context carries ``field_path`` (relative to the error's location) so that
:func:`describe_errors` can name the exact field, as the apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

Reason = Literal["FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"]

ERROR_TYPE = "chorus_rule"

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """One cross-field check: the CEL ``rule``, its ``message``, and where it points.

    ``field_path`` is relative to the object the rule is declared on (``.maxReplicas``),
    as the apiserver's ``fieldPath`` is; ``reason`` picks the apiserver's error kind.
    The message is plain text (no braces): it is used verbatim on both sides.
    """

    rule: str
    message: str
    field_path: str | None = None
    reason: Reason | None = None

    def to_k8s(self) -> dict[str, str]:
        """The entry for ``x-kubernetes-validations``."""
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        if self.reason:
            entry["reason"] = self.reason
        return entry

    def error(self) -> PydanticCustomError:
        """The Python-side error to raise when this rule does not hold."""
        return rule_error(self.message, self.field_path or "")


def rule_error(message: str, field_path: str = "") -> PydanticCustomError:
    """A ``chorus_rule`` error; ``field_path`` (``.name``, ``[2]``) refines its location."""
    return PydanticCustomError(ERROR_TYPE, message, {"field_path": field_path})


def validations(*rules: Rule) -> dict[str, Any]:
    """``json_schema_extra`` that attaches ``rules`` to a model or field schema."""
    return {"x-kubernetes-validations": [rule.to_k8s() for rule in rules]}


def list_map(*keys: str) -> dict[str, Any]:
    """``json_schema_extra`` for a list of objects keyed by ``keys`` (no two share them)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def list_set() -> dict[str, Any]:
    """``json_schema_extra`` for a list of scalars without duplicates."""
    return {"x-kubernetes-list-type": "set"}


def unique_by(key: Callable[[T], Hashable]) -> Callable[[tuple[T, ...]], tuple[T, ...]]:
    """An after-validator refusing a second item with the same ``key``.

    It mirrors ``x-kubernetes-list-type: map``/``set``: the error names the index of
    the duplicate and its value, like the apiserver's ``Duplicate value``.
    """

    def check(items: tuple[T, ...]) -> tuple[T, ...]:
        seen: set[Hashable] = set()
        for index, item in enumerate(items):
            value = key(item)
            if value in seen:
                raise rule_error(f'Duplicate value: "{value}"', f"[{index}]")
            seen.add(value)
        return items

    return check


def field_path(loc: Sequence[int | str]) -> str:
    """Renders a pydantic location as the apiserver does: ``spec.publish[0].topic``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, ``<field path>: <message>``, most precise location first.

    Union branches that pydantic reports (``function-after[...]`` and the like) are
    dropped from the location so the path reads like a field of the manifest.
    """
    lines = []
    for item in error.errors():
        loc = [part for part in item["loc"] if isinstance(part, int) or "[" not in part]
        path = field_path(loc)
        ctx = item.get("ctx") or {}
        if item["type"] == ERROR_TYPE and ctx.get("field_path"):
            suffix = str(ctx["field_path"])
            path = f"{path}{suffix}" if path else suffix.lstrip(".")
        lines.append(f"{path or '<root>'}: {item['msg']}")
    return lines


def error_paths(error: ValidationError) -> list[str]:
    """The field paths :func:`describe_errors` names, without the messages."""
    return [line.split(": ", 1)[0] for line in describe_errors(error)]
