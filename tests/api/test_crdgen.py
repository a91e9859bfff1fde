"""The generated files: committed CRDs and docs/api.md equal what the models generate,
and the CRD schemas are structural, bounded and carry what reviewers rely on."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from chorus_api.apidocs import render_api_docs
from chorus_api.common import ApiModel
from chorus_api.crd import AGENT, KINDS, REGENERATE, TOOL, KindInfo, build_crd, openapi_schema
from chorus_api.crdgen import find_root, generated_files, main, stale_files
from chorus_api.examples import invalid_examples, valid_examples
from chorus_api.rules import Rule, list_map, validations
from chorus_api.schema import SchemaError, structural_problems, structural_schema, walk
from pydantic import BaseModel, ConfigDict, Field

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "charts" / "chorus-operator" / "crds"


def test_committed_files_equal_the_generated_ones() -> None:
    stale = [str(path.relative_to(REPO)) for path in stale_files(REPO)]
    assert not stale, f"stale generated files {stale}; run: {REGENERATE}"


def test_regenerate_command_is_the_one_named() -> None:
    assert REGENERATE == ".venv/bin/python -m chorus_api.crdgen"


def test_check_fails_naming_the_stale_file_and_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stale: charts/chorus-operator/crds/agents.chorus.dev.yaml" in err
    assert "stale: docs/api.md" in err
    assert f"run: {REGENERATE}" in err

    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "docs" / "api.md").write_text("edited by hand\n")
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("stale:") == 1


def test_generation_is_deterministic() -> None:
    assert generated_files(REPO) == generated_files(REPO)


def test_find_root_from_a_subdirectory() -> None:
    assert find_root(REPO / "operator" / "api") == REPO


def test_one_crd_file_per_kind() -> None:
    for info in KINDS:
        crd = yaml.safe_load((CRD_DIR / info.filename).read_text())
        assert crd["metadata"]["name"] == info.crd_name == f"{info.plural}.chorus.dev"


# --- what the CRDs declare ---------------------------------------------------------------


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_crd_names_scope_and_version(info: KindInfo) -> None:
    spec = build_crd(info)["spec"]
    assert spec["group"] == "chorus.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["chorus"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_short_names_and_printer_columns() -> None:
    def columns(info: KindInfo) -> dict[str, str]:
        version = build_crd(info)["spec"]["versions"][0]
        return {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}

    assert build_crd(AGENT)["spec"]["names"]["shortNames"] == ["ag"]
    assert build_crd(TOOL)["spec"]["names"]["shortNames"] == ["tl"]
    assert {"Ready", "Phase", "Age"} <= columns(AGENT).keys()
    assert {"Ready", "Tools", "Age"} <= columns(TOOL).keys()
    assert columns(TOOL)["Tools"] == ".status.discoveredToolCount"
    assert columns(AGENT)["Ready"] == '.status.conditions[?(@.type=="Ready")].status'


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_schema_is_structural(info: KindInfo) -> None:
    schema = openapi_schema(info)
    assert structural_problems(schema) == []
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]
    text = (CRD_DIR / info.filename).read_text()
    for banned in ("$ref", "$defs", "title:", "nullable", "allOf", "oneOf", "uniqueItems"):
        assert banned not in text


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_property_is_typed_and_described(info: KindInfo) -> None:
    for path, node in walk(openapi_schema(info)):
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "type" in node, path
        if path.startswith((".spec", ".status")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"
        if node["type"] == "object" and "properties" not in node:
            free = (
                node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
            )
            assert free or path == ".metadata", f"{path}: an object with no properties"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_spec_strings_with_rules_and_lists_are_bounded(info: KindInfo) -> None:
    """The apiserver estimates CEL costs from maxItems and maxLength."""
    for path, node in walk(openapi_schema(info)["properties"]["spec"], ".spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path


def test_only_the_agent_card_is_free_form() -> None:
    free = [
        path
        for info in KINDS
        for path, node in walk(openapi_schema(info))
        if node.get("x-kubernetes-preserve-unknown-fields")
    ]
    assert free == [".status.agentCard"]


def _node(info: KindInfo, path: str) -> dict[str, Any]:
    return dict(walk(openapi_schema(info)))[path]


def test_lists_are_keyed_so_duplicates_are_refused() -> None:
    for path, key in [
        (".spec.subscribe", "topic"),
        (".spec.publish", "topic"),
        (".spec.tools", "ref"),
        (".spec.streams", "name"),
        (".spec.skills", "id"),
        (".status.conditions", "type"),
    ]:
        node = _node(AGENT, path)
        assert node["x-kubernetes-list-type"] == "map", path
        assert node["x-kubernetes-list-map-keys"] == [key], path
    assert _node(AGENT, ".spec.tools[].allow")["x-kubernetes-list-type"] == "set"
    assert _node(TOOL, ".spec.mcp.server.env")["x-kubernetes-list-map-keys"] == ["name"]


def test_enums_defaults_and_bounds() -> None:
    assert _node(AGENT, ".spec.model.provider")["enum"] == [
        "openai",
        "anthropic",
        "gemini",
        "scripted",
    ]
    assert _node(AGENT, ".spec.delivery.guarantee")["enum"] == ["at-least-once", "exactly-once"]
    assert _node(AGENT, ".spec.streams[].upgradeMode")["enum"] == [
        "stateless",
        "savepoint",
        "last-state",
    ]
    assert _node(AGENT, ".status.phase")["enum"] == ["Pending", "Ready", "Degraded", "Failed"]
    assert _node(AGENT, ".spec.delivery")["default"] == {}
    assert _node(AGENT, ".spec.delivery.maxAttempts")["minimum"] == 1
    assert _node(AGENT, ".spec.streams[].parallelism")["minimum"] == 1
    assert _node(TOOL, ".spec.timeoutSeconds")["minimum"] == 1
    assert _node(AGENT, ".spec.publish[].topic")["pattern"] == "^[a-zA-Z0-9._-]{1,249}$"
    assert _node(AGENT, ".spec.publish[].retention")["pattern"].startswith("^[1-9]")


def test_cel_rules_where_the_design_wants_them() -> None:
    def rules(info: KindInfo, path: str) -> list[str]:
        return [r["rule"] for r in _node(info, path).get("x-kubernetes-validations", [])]

    assert "has(self.url) != has(self.server)" in rules(TOOL, ".spec.mcp")
    assert "self.maxReplicas >= self.minReplicas" in rules(AGENT, ".spec.scaling")
    assert "has(self.handler) || has(self.instructions)" in rules(AGENT, ".spec")
    assert "self.provider == 'scripted' || has(self.name)" in rules(AGENT, ".spec.model")
    assert "self != '.' && self != '..'" in rules(AGENT, ".spec.subscribe[].topic")
    for info in KINDS:
        for path, node in walk(openapi_schema(info)):
            for rule in node.get("x-kubernetes-validations", []):
                assert rule["message"], path
                if "fieldPath" in rule:
                    assert rule["fieldPath"].lstrip(".") in node.get("properties", {}), path


# --- the schema conversion on small models -----------------------------------------------


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(ApiModel):
    """An inner object."""

    colour: Colour = Colour.RED
    """Its colour."""


class Outer(ApiModel):
    """An outer object."""

    model_config = ConfigDict(
        json_schema_extra=validations(Rule(rule="true", message="always", field_path=".inner"))
    )

    inner: Inner | None = None
    """The field's own description wins over the class docstring."""
    names: Annotated[
        tuple[Inner, ...], Field(max_length=3, json_schema_extra=list_map("colour"))
    ] = ()
    """Keyed by colour."""
    labels: dict[str, str] | None = None
    """A map."""
    anything: dict[str, Any] | None = None
    """Free-form."""
    count: Annotated[int, Field(gt=0)] = 1
    """Positive."""


def test_conversion_inlines_unwraps_and_keeps_markers() -> None:
    schema = structural_schema(Outer)
    props = schema["properties"]
    assert (
        props["inner"]["description"]
        == "The field's own description wins over the class docstring."
    )
    assert props["inner"]["properties"]["colour"] == {
        "description": "Its colour.",
        "type": "string",
        "enum": ["red", "blue"],
        "default": "red",
    }
    assert props["names"]["x-kubernetes-list-type"] == "map"
    assert "default" not in props["names"]
    assert props["labels"] == {
        "description": "A map.",
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    assert props["anything"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["count"]["minimum"] == 0
    assert props["count"]["exclusiveMinimum"] is True
    assert schema["x-kubernetes-validations"] == [
        {"rule": "true", "message": "always", "fieldPath": ".inner"}
    ]
    assert structural_problems(schema) == []


class Union(BaseModel):
    value: int | str


class Unique(BaseModel):
    values: set[str]


def test_conversion_refuses_what_cannot_be_structural() -> None:
    with pytest.raises(SchemaError, match="union"):
        structural_schema(Union)
    with pytest.raises(SchemaError, match="uniqueItems"):
        structural_schema(Unique)


def test_structural_problems_are_named() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"description": "no type"},
            "b": {"type": "array", "items": {"type": "string"}},
            "c": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
        },
        "required": ["d"],
    }
    assert structural_problems({"type": "object", "properties": {"spec": bad}}) == [
        ".spec: required 'd' is not a property",
        ".spec.a: no type",
        ".spec.b: an array without maxItems",
        ".spec.c: properties and additionalProperties together",
    ]


# --- the API reference -------------------------------------------------------------------


def test_api_docs_cover_every_field_and_example() -> None:
    text = render_api_docs()
    for info in KINDS:
        for path, _ in walk(openapi_schema(info)):
            if path.startswith((".spec", ".status")) and not path.endswith(("{}", "[]")):
                assert f"`{path.lstrip('.')}`" in text, path
    for example in (*valid_examples(), *invalid_examples()):
        assert f"`{example.path}`" in text
    for example in invalid_examples():
        assert str(example.error) in text
