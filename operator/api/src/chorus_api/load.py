"""Reading Chorus resources from dicts and YAML manifests (the local runner, the operator).

A document of another API group or kind is refused with a ``ValueError`` naming it;
a Chorus resource that breaks a rule raises pydantic's ``ValidationError``, which
:func:`chorus_api.rules.describe_errors` renders field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from chorus_api.agent import Agent
from chorus_api.common import API_VERSION
from chorus_api.tool import Tool

Resource = Agent | Tool
KINDS: dict[str, type[Agent] | type[Tool]] = {"Agent": Agent, "Tool": Tool}


def parse_resource(document: Mapping[str, Any]) -> Resource:
    """The Agent or Tool that ``document`` (a whole resource) describes."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION or kind not in KINDS:
        name = (document.get("metadata") or {}).get("name", "?")
        raise ValueError(
            f"{kind}/{name}: not a Chorus resource ({API_VERSION} Agent or Tool): {api_version}"
        )
    return KINDS[kind].model_validate(document)


def load_resources(text: str) -> list[Resource]:
    """Every resource in a multi-document YAML text; empty documents are skipped."""
    return [parse_resource(doc) for doc in yaml.safe_load_all(text) if doc is not None]


def to_manifest(resource: Resource) -> dict[str, Any]:
    """The resource as Kubernetes stores it: aliases, no ``None``, no empty lists."""
    manifest: dict[str, Any] = _prune(
        resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    return manifest


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _prune(item) for key, item in value.items() if item != []}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value
