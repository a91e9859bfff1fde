"""A domain's Agent and Tool resources, read from its kustomize directory.

A domain keeps its manifests in ``agents/<domain>/deploy/`` (``kustomization.yaml`` ->
``overlays/dev`` -> ``base/``); :func:`load_domain` reads them the way ``kubectl apply
-k`` would, for the subset of kustomize the domains use:

- ``resources`` (and the older ``bases``): YAML files (several documents each) and
  directories holding a ``kustomization.yaml``, followed recursively; each directory's
  own transformations apply to what it includes before the including one's do;
- ``namespace``: set on every resource;
- ``commonLabels``, ``commonAnnotations``, ``labels`` (``pairs`` only): merged into
  ``metadata``;
- ``patchesStrategicMerge`` (paths or inline YAML) and ``patches`` (``path`` or inline
  ``patch``, optionally a ``target`` with ``kind``, ``name`` (a regular expression, as in
  kustomize), ``group``, ``version``, ``namespace``): a patch document with ``kind`` and
  ``metadata.name`` is a merge patch (maps merged, lists replaced, ``null`` removes: what
  kustomize does for custom resources, which have no merge keys), a list is a JSON 6902
  patch (``add``, ``remove``, ``replace``, ``test``) applied to the ``target``.

Any other kustomization key (generators, images, name prefixes, replacements,
components, remote resources, ...) is refused with a :class:`DomainError` naming the
file and the key rather than silently ignored. Documents that are not Chorus resources
(a Namespace, a ConfigMap) are kept in :attr:`Domain.others`. Every error names the
file it comes from.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from chorus_api import Agent, Tool, describe_errors, parse_resource
from chorus_api.common import API_VERSION
from pydantic import ValidationError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "resources",
        "bases",
        "namespace",
        "commonLabels",
        "commonAnnotations",
        "labels",
        "patches",
        "patchesStrategicMerge",
    }
)
"""The kustomization keys :func:`load_domain` understands; any other is refused."""
_TARGET_KEYS = frozenset({"kind", "name", "group", "version", "namespace"})
_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "test"})


class DomainError(ValueError):
    """A domain's manifests cannot be read; the message names the file (and the key)."""


@dataclass(frozen=True)
class Document:
    """One YAML document and the file it came from."""

    body: dict[str, Any]
    source: Path

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))


@dataclass(frozen=True)
class Domain:
    """A domain's resources after kustomization: its agents and tools, in file order."""

    name: str
    namespace: str
    agents: tuple[Agent, ...]
    tools: tuple[Tool, ...]
    others: tuple[Document, ...] = field(default=())
    """Documents that are not Chorus resources (Namespaces, ConfigMaps, ...)."""

    def agent(self, name: str) -> Agent | None:
        return next((a for a in self.agents if a.metadata.name == name), None)

    @property
    def config_maps(self) -> dict[str, dict[str, str]]:
        """The data of each ConfigMap among :attr:`others`, by name (what an Agent's
        ``model.scriptFrom`` refers to)."""
        return {
            document.name: {str(k): str(v) for k, v in (document.body.get("data") or {}).items()}
            for document in self.others
            if document.kind == "ConfigMap" and document.name
        }

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.metadata.name == name), None)


def find_deploy_dir(domain: str, start: Path | None = None) -> Path:
    """``agents/<domain>/deploy`` in ``start`` (default: the working directory) or above."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "agents" / domain / "deploy"
        if candidate.is_dir():
            return candidate
    raise DomainError(f"domain {domain}: no agents/{domain}/deploy in {here} or above")


def load_domain(path: Path, *, name: str | None = None) -> Domain:
    """The domain whose manifests are in ``path`` (a kustomize directory or a YAML file).

    ``name`` defaults to the directory's name, or its parent's when it is called
    ``deploy`` (``agents/trading/deploy`` is the domain ``trading``). The namespace is the
    resources' (they must agree), else the domain's name.
    """
    path = Path(path)
    if name is None:
        directory = path if path.is_dir() else path.parent
        directory = directory.resolve()
        name = directory.parent.name if directory.name == "deploy" else directory.name
    documents = load_documents(path)
    agents: list[Agent] = []
    tools: list[Tool] = []
    others: list[Document] = []
    namespaces: dict[str, Path] = {}
    for document in documents:
        if document.body.get("apiVersion") != API_VERSION or document.kind not in ("Agent", "Tool"):
            others.append(document)
            continue
        label = f"{document.source}: {document.kind}/{document.name or '?'}"
        try:
            resource = parse_resource(document.body)
        except ValidationError as exc:
            raise DomainError(f"{label}: " + "; ".join(describe_errors(exc))) from None
        except ValueError as exc:
            raise DomainError(f"{label}: {exc}") from None
        if resource.metadata.namespace:
            namespaces.setdefault(resource.metadata.namespace, document.source)
        if isinstance(resource, Agent):
            agents.append(resource)
        else:
            tools.append(resource)
    if len(namespaces) > 1:
        found = ", ".join(f"{ns} ({source})" for ns, source in sorted(namespaces.items()))
        raise DomainError(f"domain {name}: resources in several namespaces: {found}")
    for kind, names in (
        ("Agent", [a.metadata.name for a in agents]),
        ("Tool", [t.metadata.name for t in tools]),
    ):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DomainError(f"domain {name}: {kind} defined twice: {', '.join(duplicates)}")
    namespace = next(iter(namespaces), name)
    return Domain(
        name=name,
        namespace=namespace,
        agents=tuple(agents),
        tools=tuple(tools),
        others=tuple(others),
    )


def load_documents(path: Path) -> list[Document]:
    """Every document ``path`` yields after kustomization (a file: its documents as they are)."""
    path = Path(path)
    if path.is_file():
        return _read_yaml(path)
    if not path.is_dir():
        raise DomainError(f"{path}: no such file or directory")
    return _kustomize(path, ())


def _kustomization_file(directory: Path) -> Path | None:
    return next(
        (directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()),
        None,
    )


def _read_yaml(path: Path) -> list[Document]:
    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DomainError(f"{path}: cannot read: {exc}") from None
    documents = []
    for body in loaded:
        if body is None:
            continue
        if not isinstance(body, dict):
            raise DomainError(f"{path}: a document is not a mapping: {str(body)[:60]!r}")
        documents.append(Document(body, path))
    return documents


def _kustomize(directory: Path, seen: tuple[Path, ...]) -> list[Document]:
    """The documents of the kustomization in ``directory``, its transformations applied."""
    directory = directory.resolve()
    if directory in seen:
        chain = " -> ".join(str(p) for p in (*seen, directory))
        raise DomainError(f"{directory}: kustomization includes itself: {chain}")
    file = _kustomization_file(directory)
    if file is None:
        # A plain directory of manifests: every YAML file in name order.
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise DomainError(f"{directory}: neither a kustomization nor any YAML file")
        return [document for f in files for document in _read_yaml(f)]
    spec = _read_kustomization(file)
    documents: list[Document] = []
    for key in ("bases", "resources"):
        for entry in _string_list(spec, key, file):
            if re.match(r"^[a-z][a-z0-9+.-]*://", entry) or entry.startswith("git@"):
                raise DomainError(f"{file}: {key}: remote resource {entry!r} is not supported")
            target = (directory / entry).resolve()
            if target.is_dir():
                documents += _kustomize(target, (*seen, directory))
            elif target.is_file():
                documents += _read_yaml(target)
            else:
                raise DomainError(f"{file}: {key}: {entry!r} does not exist ({target})")
    for patch in _strategic_merge_patches(spec, file, directory):
        documents = _apply_merge(documents, patch, None, file, "patchesStrategicMerge")
    for index, (patch_body, selector) in enumerate(_patches(spec, file, directory)):
        where = f"patches[{index}]"
        if isinstance(patch_body, list):
            if selector is None:
                raise DomainError(f"{file}: {where}: a JSON 6902 patch needs a target")
            documents = [
                _json_patch(d, patch_body, file, where) if _matches(d, selector) else d
                for d in documents
            ]
        else:
            documents = _apply_merge(documents, patch_body, selector, file, where)
    documents = _apply_metadata(documents, spec, file)
    namespace = spec.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str) or not namespace:
            raise DomainError(f"{file}: namespace: not a name: {namespace!r}")
        documents = [_with_namespace(d, namespace) for d in documents]
    return documents


def _read_kustomization(file: Path) -> dict[str, Any]:
    documents = _read_yaml(file)
    if len(documents) != 1:
        raise DomainError(f"{file}: a kustomization is one YAML document, found {len(documents)}")
    spec = documents[0].body
    unsupported = sorted(set(spec) - SUPPORTED_KEYS)
    if unsupported:
        supported = ", ".join(sorted(SUPPORTED_KEYS - {"apiVersion", "kind", "metadata"}))
        raise DomainError(
            f"{file}: {unsupported[0]}: kustomize feature not supported by chorus dev "
            f"(supported: {supported})"
        )
    return spec


def _string_list(spec: Mapping[str, Any], key: str, file: Path) -> list[str]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DomainError(f"{file}: {key}: not a list of paths")
    return list(value)


def _patch_document(text: str, file: Path, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DomainError(f"{file}: {where}: not YAML: {exc}") from None


def _patch_file(directory: Path, entry: str, file: Path, where: str) -> Any:
    target = (directory / entry).resolve()
    if not target.is_file():
        raise DomainError(f"{file}: {where}: {entry!r} does not exist ({target})")
    return _patch_document(target.read_text(encoding="utf-8"), file, f"{where} ({entry})")


def _strategic_merge_patches(
    spec: Mapping[str, Any], file: Path, directory: Path
) -> list[dict[str, Any]]:
    entries = spec.get("patchesStrategicMerge") or []
    if not isinstance(entries, list):
        raise DomainError(f"{file}: patchesStrategicMerge: not a list")
    patches = []
    for index, entry in enumerate(entries):
        where = f"patchesStrategicMerge[{index}]"
        if not isinstance(entry, str):
            raise DomainError(f"{file}: {where}: not a path or a YAML text")
        body = (
            _patch_document(entry, file, where)
            if "\n" in entry or entry.lstrip().startswith(("{", "apiVersion", "kind"))
            else _patch_file(directory, entry, file, where)
        )
        if not isinstance(body, dict):
            raise DomainError(f"{file}: {where}: a strategic merge patch is a mapping")
        patches.append(body)
    return patches


def _patches(
    spec: Mapping[str, Any], file: Path, directory: Path
) -> list[tuple[Any, dict[str, Any] | None]]:
    entries = spec.get("patches") or []
    if not isinstance(entries, list):
        raise DomainError(f"{file}: patches: not a list")
    found: list[tuple[Any, dict[str, Any] | None]] = []
    for index, entry in enumerate(entries):
        where = f"patches[{index}]"
        if not isinstance(entry, dict):
            raise DomainError(f"{file}: {where}: not a mapping with path or patch")
        extra = sorted(set(entry) - {"path", "patch", "target"})
        if extra:
            raise DomainError(f"{file}: {where}.{extra[0]}: not supported by chorus dev")
        if ("path" in entry) == ("patch" in entry):
            raise DomainError(f"{file}: {where}: needs exactly one of path and patch")
        body = (
            _patch_file(directory, str(entry["path"]), file, where)
            if "path" in entry
            else _patch_document(str(entry["patch"]), file, where)
        )
        if not isinstance(body, dict | list):
            raise DomainError(f"{file}: {where}: neither a merge patch nor a JSON 6902 patch")
        target = entry.get("target")
        if target is not None:
            if not isinstance(target, dict):
                raise DomainError(f"{file}: {where}.target: not a mapping")
            unknown = sorted(set(target) - _TARGET_KEYS)
            if unknown:
                raise DomainError(
                    f"{file}: {where}.target.{unknown[0]}: not supported by chorus dev "
                    f"(supported: {', '.join(sorted(_TARGET_KEYS))})"
                )
        found.append((body, target))
    return found


def _matches(document: Document, target: Mapping[str, Any]) -> bool:
    body = document.body
    group, _, version = str(body.get("apiVersion", "")).rpartition("/")
    metadata = body.get("metadata") or {}
    checks = {
        "kind": document.kind,
        "group": group,
        "version": version,
        "namespace": str(metadata.get("namespace") or ""),
    }
    for key, actual in checks.items():
        if key in target and str(target[key]) != actual:
            return False
    return "name" not in target or re.fullmatch(str(target["name"]), document.name) is not None


def _apply_merge(
    documents: list[Document],
    patch: dict[str, Any],
    target: dict[str, Any] | None,
    file: Path,
    where: str,
) -> list[Document]:
    if target is None:
        kind = patch.get("kind")
        name = (patch.get("metadata") or {}).get("name")
        if not kind or not name:
            raise DomainError(f"{file}: {where}: a merge patch names its kind and metadata.name")
        target = {"kind": kind, "name": re.escape(str(name))}
    matched = False
    patched = []
    for document in documents:
        if _matches(document, target):
            matched = True
            document = Document(merge_patch(document.body, patch), document.source)
        patched.append(document)
    if not matched:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(target.items()))
        raise DomainError(f"{file}: {where}: no resource matches ({wanted})")
    return patched


def merge_patch(base: Any, patch: Any) -> Any:
    """``patch`` applied to ``base`` (RFC 7386): maps merged, ``None`` removes, else replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _pointer(path: Any, file: Path, where: str) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise DomainError(f"{file}: {where}: path {path!r} is not a JSON pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(document: Document, ops: list[Any], file: Path, where: str) -> Document:
    body = copy.deepcopy(document.body)
    for index, op in enumerate(ops):
        at = f"{where}[{index}]"
        if not isinstance(op, dict) or op.get("op") not in _JSON_PATCH_OPS:
            name = op.get("op") if isinstance(op, dict) else op
            raise DomainError(
                f"{file}: {at}: operation {name!r} not supported by chorus dev "
                f"(supported: {', '.join(sorted(_JSON_PATCH_OPS))})"
            )
        parts = _pointer(op.get("path"), file, at)
        parent: Any = body
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            last = parts[-1]
            if op["op"] == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != op.get("value"):
                    raise DomainError(f"{file}: {at}: test failed at {op['path']}")
            elif op["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif isinstance(parent, list):
                position = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(position, copy.deepcopy(op.get("value")))
                else:
                    parent[position] = copy.deepcopy(op.get("value"))
            else:
                if op["op"] == "replace" and last not in parent:
                    raise KeyError(last)
                parent[last] = copy.deepcopy(op.get("value"))
        except (KeyError, IndexError, ValueError, TypeError):
            raise DomainError(
                f"{file}: {at}: {op['op']} {op['path']}: no such location in "
                f"{document.kind}/{document.name} ({document.source})"
            ) from None
    return Document(body, document.source)


def _string_map(value: Any, file: Path, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DomainError(f"{file}: {key}: not a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _apply_metadata(
    documents: list[Document], spec: Mapping[str, Any], file: Path
) -> list[Document]:
    labels = _string_map(spec.get("commonLabels"), file, "commonLabels")
    annotations = _string_map(spec.get("commonAnnotations"), file, "commonAnnotations")
    entries = spec.get("labels") or []
    if not isinstance(entries, list):
        raise DomainError(f"{file}: labels: not a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DomainError(f"{file}: labels[{index}]: not a mapping")
        extra = sorted(set(entry) - {"pairs", "includeSelectors", "includeTemplates"})
        if extra:
            raise DomainError(f"{file}: labels[{index}].{extra[0]}: not supported by chorus dev")
        labels.update(_string_map(entry.get("pairs"), file, f"labels[{index}].pairs"))
    if not labels and not annotations:
        return documents
    patch: dict[str, Any] = {}
    if labels:
        patch["labels"] = labels
    if annotations:
        patch["annotations"] = annotations
    return [Document(merge_patch(d.body, {"metadata": patch}), d.source) for d in documents]


def _with_namespace(document: Document, namespace: str) -> Document:
    if document.kind == "Namespace":
        return document
    return Document(
        merge_patch(document.body, {"metadata": {"namespace": namespace}}), document.source
    )
