"""Pydantic JSON schema -> structural OpenAPI v3 schema, as a CRD needs it.

Kubernetes accepts only *structural* schemas: every node has a ``type`` (except
int-or-string and free-form nodes, which say so), no ``$ref``, no ``anyOf`` that
carries types, no ``additionalProperties`` beside ``properties``. :func:`structural_schema`
turns what pydantic emits into that: it inlines ``$defs``, drops titles, unwraps
``Optional`` (an absent field is how Kubernetes says "none"), turns ``const`` into a
one-value ``enum`` and free-form maps into ``x-kubernetes-preserve-unknown-fields``,
and keeps descriptions (from docstrings), defaults, bounds, patterns and the
``x-kubernetes-*`` markers and CEL rules the models declare through ``json_schema_extra``.

:func:`structural_problems` checks the result; the generator refuses to write a CRD
that has any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

# Keys are written in this order (then any other key), so the YAML reads top-down.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "anyOf",
    "items",
    "properties",
    "additionalProperties",
    "required",
)
_DROPPED = {"title", "examples", "$schema"}
_CODE = re.compile(r"``([^`]+)``")


class SchemaError(ValueError):
    """The models produced a schema that cannot be made structural."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model``, as used in validation mode."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _convert(raw, defs, model.__name__)


def _resolve(ref: str, defs: dict[str, Any]) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise SchemaError(f"unresolved reference {ref}")
    target: dict[str, Any] = defs[name]
    return target


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` wins, except that CEL rules from both are kept."""
    merged = {**base, **extra}
    rules = base.get("x-kubernetes-validations", []) + extra.get("x-kubernetes-validations", [])
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def _convert(node: dict[str, Any], defs: dict[str, Any], where: str) -> dict[str, Any]:
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref")
        node = _merge(_resolve(ref, defs), node)
        return _convert(node, defs, where)
    if "allOf" in node and len(node["allOf"]) == 1:
        (inner,) = node.pop("allOf")
        return _convert(_merge(inner, node), defs, where)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if node.get("default", ...) is None:
            del node["default"]
        if len(branches) != 1:
            raise SchemaError(f"{where}: a union of several types is not structural: {branches}")
        return _convert(_merge(branches[0], node), defs, where)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "description":
            out[key] = _description(value)
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _convert(sub, defs, f"{where}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{where}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict) and "properties" not in node:
                out[key] = _convert(value, defs, f"{where}{{}}")
        elif key in {"exclusiveMinimum", "exclusiveMaximum"} and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "x-kubernetes-validations":
            out[key] = [_ordered_rule(rule) for rule in value]
        elif key == "uniqueItems":
            raise SchemaError(f"{where}: uniqueItems is not allowed; use list_set() or list_map()")
        elif key == "default" and value == []:
            continue  # an absent list already means "none"; keep stored objects small
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


def _description(text: str) -> str:
    """Docstring -> description: Markdown code spans, lines of a paragraph joined."""
    text = _CODE.sub(r"`\1`", text.strip())
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    known = {key: node[key] for key in _KEY_ORDER if key in node}
    rest = {key: node[key] for key in sorted(node) if key not in known}
    return {**known, **rest}


_RULE_ORDER = ("rule", "message", "messageExpression", "fieldPath", "reason", "optionalOldSelf")


def _ordered_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: rule[key] for key in _RULE_ORDER if key in rule}


# --- checks ------------------------------------------------------------------------------

_FORBIDDEN = {"$ref", "$defs", "allOf", "oneOf", "not", "const", "nullable", "uniqueItems", "title"}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (``.spec.publish[].topic``), parents first."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def structural_problems(schema: dict[str, Any], *, spec_bounded: bool = True) -> list[str]:
    """What keeps ``schema`` from being a structural schema the apiserver accepts.

    With ``spec_bounded``, every list under ``.spec`` must also have ``maxItems``: the
    apiserver estimates CEL rule costs from these bounds.
    """
    problems = []
    for path, node in walk(schema):
        at = path or "<root>"
        free = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        if "type" not in node and not free:
            problems.append(f"{at}: no type")
        for key in sorted(_FORBIDDEN & node.keys()):
            problems.append(f"{at}: {key} is not allowed")
        if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{at}: anyOf is only allowed on int-or-string")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{at}: properties and additionalProperties together")
        if node.get("type") == "array":
            if "items" not in node:
                problems.append(f"{at}: an array without items")
            if spec_bounded and path.startswith(".spec") and "maxItems" not in node:
                problems.append(f"{at}: an array without maxItems")
            problems.extend(_list_type_problems(at, node))
        for name in node.get("required", []):
            if name not in node.get("properties", {}):
                problems.append(f"{at}: required {name!r} is not a property")
    return problems


def _list_type_problems(at: str, node: dict[str, Any]) -> list[str]:
    kind = node.get("x-kubernetes-list-type")
    items = node.get("items", {})
    if kind == "set" and items.get("type") in {"object", "array"}:
        return [f"{at}: a set must hold scalars"]
    if kind != "map":
        return []
    problems = []
    for key in node.get("x-kubernetes-list-map-keys", []):
        if key not in items.get("properties", {}):
            problems.append(f"{at}: map key {key!r} is not a property of the items")
        elif key not in items.get("required", []) and "default" not in items["properties"][key]:
            problems.append(f"{at}: map key {key!r} is neither required nor defaulted")
    return problems
