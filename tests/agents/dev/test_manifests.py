"""Reading a domain's kustomize directory: resources, bases, namespace, patches, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from chorus_agents.dev.config import LocalConfigError, runtime_config_for
from chorus_agents.dev.manifests import DomainError, load_domain, merge_patch
from chorus_agents.models import ChatMessage, ModelRequest, ScriptedModel, provider_for

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = FIXTURES / "shop" / "deploy"

AGENT = """\
apiVersion: chorus.dev/v1alpha1
kind: Agent
metadata: {name: %s}
spec:
  handler: shop.agents:Agent
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.unit
def test_the_fixture_domain_is_read_through_overlay_and_base() -> None:
    domain = load_domain(SHOP)
    assert (domain.name, domain.namespace) == ("shop", "shop")
    assert [a.metadata.name for a in domain.agents] == ["analyst", "risk", "trader"]
    assert [t.metadata.name for t in domain.tools] == ["exchange"]
    assert [d.kind for d in domain.others] == ["Namespace"]
    assert {a.metadata.namespace for a in domain.agents} == {"shop"}
    trader, analyst = domain.agent("trader"), domain.agent("analyst")
    assert trader is not None and analyst is not None
    # the merge patch (by kind and name), the JSON 6902 patch, commonLabels
    assert trader.metadata.annotations == {"chorus.dev/calls": "risk"}
    assert analyst.spec.tools[0].allow == ("get_quote", "get_positions")
    assert trader.metadata.labels == {"app.kubernetes.io/part-of": "shop"}
    # patchesStrategicMerge: the url replaced, the description kept
    exchange = domain.tool("exchange")
    assert exchange is not None and exchange.spec.mcp.url == "http://127.0.0.1:8765/mcp"
    assert exchange.spec.description == "Simulated exchange"


@pytest.mark.unit
def test_a_plain_directory_and_a_single_file_are_read_too(tmp_path: Path) -> None:
    write(tmp_path / "flat", {"a.yaml": AGENT % "alpha", "b.yml": AGENT % "beta"})
    domain = load_domain(tmp_path / "flat")
    assert (domain.name, domain.namespace) == ("flat", "flat")
    assert [a.metadata.name for a in domain.agents] == ["alpha", "beta"]
    assert [a.metadata.name for a in load_domain(tmp_path / "flat" / "b.yml").agents] == ["beta"]


@pytest.mark.unit
def test_unsupported_kustomize_features_are_refused_naming_file_and_key(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "kustomization.yaml": "resources: [a.yaml]\nnamePrefix: dev-\n",
            "a.yaml": AGENT % "alpha",
        },
    )
    with pytest.raises(DomainError, match=r"kustomization\.yaml: namePrefix: kustomize feature"):
        load_domain(root)
    (root / "kustomization.yaml").write_text("resources: [https://github.com/x/y//deploy]\n")
    with pytest.raises(DomainError, match="resources: remote resource"):
        load_domain(root)
    (root / "kustomization.yaml").write_text(
        "resources: [a.yaml]\npatches:\n  - target: {kind: Agent, labelSelector: a=b}\n"
        "    patch: '[]'\n"
    )
    with pytest.raises(DomainError, match=r"patches\[0\]\.target\.labelSelector: not supported"):
        load_domain(root)
    (root / "kustomization.yaml").write_text(
        "resources: [a.yaml]\npatches:\n  - target: {kind: Agent}\n"
        "    patch: '[{op: move, from: /a, path: /b}]'\n"
    )
    with pytest.raises(DomainError, match=r"operation 'move' not supported"):
        load_domain(root)


@pytest.mark.unit
def test_errors_name_the_file(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "kustomization.yaml": "resources: [a.yaml, missing.yaml]\n",
            "a.yaml": AGENT % "alpha",
        },
    )
    with pytest.raises(DomainError, match=r"kustomization\.yaml: resources: 'missing\.yaml'"):
        load_domain(root)
    bad = write(tmp_path / "bad", {"agent.yaml": AGENT.replace("handler", "handlr") % "alpha"})
    with pytest.raises(DomainError, match=r"bad/agent\.yaml: Agent/alpha: spec"):
        load_domain(bad)
    patched = write(
        tmp_path / "patched",
        {
            "kustomization.yaml": "resources: [a.yaml]\npatches:\n  - target: {kind: Agent}\n"
            "    patch: '[{op: replace, path: /spec/nothing/here, value: 1}]'\n",
            "a.yaml": AGENT % "alpha",
        },
    )
    with pytest.raises(DomainError, match=r"replace /spec/nothing/here: no such location"):
        load_domain(patched)
    loop = write(tmp_path / "loop", {"kustomization.yaml": "resources: [.]\n"})
    with pytest.raises(DomainError, match="includes itself"):
        load_domain(loop)


@pytest.mark.unit
def test_resources_in_two_namespaces_are_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "a.yaml": AGENT.replace("{name: %s}", "{name: %s, namespace: one}") % "alpha",
            "b.yaml": AGENT.replace("{name: %s}", "{name: %s, namespace: two}") % "beta",
        },
    )
    with pytest.raises(DomainError, match=r"several namespaces: one .*, two"):
        load_domain(root)


@pytest.mark.unit
def test_merge_patch_merges_maps_replaces_lists_and_removes_nulls() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(base, {"a": {"c": [3], "e": 2}, "d": None}) == {
        "a": {"b": 1, "c": [3], "e": 2}
    }
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


SCRIPTED = """\
apiVersion: chorus.dev/v1alpha1
kind: Agent
metadata: {name: triage}
spec:
  instructions: Sort each ticket into billing, technical or other, in one word.
  model:
    provider: scripted
    scriptFrom:
      configMapKeyRef: {name: triage-script, key: %s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: triage-script}
data:
  script.yaml: |
    - when: '(?i)refund|invoice'
      reply: billing
    - reply: other
"""


@pytest.mark.unit
@pytest.mark.anyio
async def test_a_script_kept_in_a_configmap_of_the_domain_is_the_one_that_decides(
    tmp_path: Path,
) -> None:
    domain = load_domain(write(tmp_path / "desk", {"triage.yaml": SCRIPTED % "script.yaml"}))
    assert list(domain.config_maps) == ["triage-script"]
    (agent,) = domain.agents
    config = runtime_config_for(agent, "127.0.0.1:9092", {}, config_maps=domain.config_maps)
    assert config.model is not None
    model = provider_for(config.model)
    assert isinstance(model, ScriptedModel)

    async def ask(text: str) -> str:
        request = ModelRequest(messages=(ChatMessage(role="user", text=text),))
        return (await model.complete(request)).text

    assert (await ask("Where is my refund?"), await ask("Hello")) == ("billing", "other")
    # a name or a key that is not there: the error names the field, and what there is
    (other,) = load_domain(write(tmp_path / "typo", {"t.yaml": SCRIPTED % "x.yaml"})).agents
    with pytest.raises(
        LocalConfigError, match=r"configMapKeyRef.key: .* no key 'x.yaml' \(it has: script.yaml\)"
    ):
        runtime_config_for(other, "127.0.0.1:9092", {}, config_maps=domain.config_maps)
    with pytest.raises(
        LocalConfigError, match=r"configMapKeyRef.name: no ConfigMap 'triage-script'"
    ):
        runtime_config_for(agent, "127.0.0.1:9092", {}, config_maps={})
