"""The one way the operator writes children: server-side apply, skipped when nothing changed.

:func:`apply` sends a server-side apply (field manager ``chorus-operator``, ``force`` so the
operator wins over hand edits: that is how drift is restored) only when the live object
differs from the desired one. "Differs" means: the hash of the desired manifest (kept in
the ``chorus.dev/applied-hash`` annotation) changed, or a field the operator sets has a
different value live (someone edited or removed it). A no-op reconcile therefore reads
and never writes. :func:`prune` deletes children labelled for an owner that are no longer
desired. Both tolerate objects that vanish meanwhile and conflicts with other writers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from chorus_operator import kinds

log = logging.getLogger("chorus_operator.apply")

FIELD_MANAGER = "chorus-operator"
APPLIED_HASH = "chorus.dev/applied-hash"
"""The annotation holding the hash of the manifest the operator last applied."""


class Outcome(StrEnum):
    """What :func:`apply` did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ObjectRef:
    """The identity of one object: enough to get, compare and delete it."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> ObjectRef:
        meta = manifest.get("metadata") or {}
        return cls(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def _canonical(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)


def _digest(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """A stable hash of a manifest (key order does not matter)."""
    return _digest(_canonical(manifest))


def with_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` with :data:`APPLIED_HASH` set to the hash of ``manifest`` itself."""
    canonical = _canonical(manifest)  # one serialisation gives both the hash and the copy
    stamped = json.loads(canonical)
    meta = stamped.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[APPLIED_HASH] = _digest(canonical)
    meta["annotations"] = annotations
    return dict(stamped)


def covers(live: Any, desired: Any) -> bool:
    """Whether ``live`` holds every value ``desired`` sets (extra live fields are fine).

    Lists must have the same length and match item by item, since the apiserver keeps
    the operator's order; numbers compare by value (``1`` equals ``1.0``).
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and covers(live[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(covers(a, b) for a, b in zip(live, desired, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(live) == float(desired)
    return bool(live == desired)


def up_to_date(live: Mapping[str, Any] | None, stamped: Mapping[str, Any]) -> bool:
    """Whether applying ``stamped`` (a :func:`with_hash` manifest) to ``live`` changes nothing."""
    if live is None:
        return False
    wanted = stamped["metadata"]["annotations"][APPLIED_HASH]
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(APPLIED_HASH) != wanted:
        return False
    body = {key: value for key, value in stamped.items() if key not in {"status"}}
    return covers(live, body)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object (or a mapping) as a plain dict."""
    result: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return result


async def get(client: AsyncClient, ref: ObjectRef) -> dict[str, Any] | None:
    """The live object, or ``None`` when it does not exist."""
    res = kinds.resource(kinds.find(ref.api_version, ref.kind))
    try:
        obj = await client.get(res, ref.name, namespace=ref.namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    return as_dict(obj)


async def apply(
    client: AsyncClient,
    manifest: Mapping[str, Any],
    *,
    live: Mapping[str, Any] | None = None,
    read: bool = True,
) -> tuple[Outcome, dict[str, Any]]:
    """Make the object ``manifest`` describes exist as described; returns what it did.

    ``live`` is the object as already read (saves a GET); when omitted it is read here,
    unless ``read`` is off (the caller knows it does not exist yet: one request, the
    apply, instead of two). Only a changed object is written (server-side apply, forced,
    as ``chorus-operator``).
    """
    ref = ObjectRef.of(manifest)
    stamped = with_hash(manifest)
    current = dict(live) if live is not None else (await get(client, ref) if read else None)
    if current is not None and up_to_date(current, stamped):
        return Outcome.UNCHANGED, current
    res = kinds.resource(kinds.find(ref.api_version, ref.kind))
    applied = await client.patch(
        res,
        ref.name,
        stamped,
        namespace=ref.namespace,
        patch_type=PatchType.APPLY,
        field_manager=FIELD_MANAGER,
        force=True,
    )
    return (Outcome.CREATED if current is None else Outcome.UPDATED), as_dict(applied)


async def create(
    client: AsyncClient, manifest: Mapping[str, Any]
) -> tuple[Outcome, dict[str, Any] | None]:
    """Creates the object unless it exists (then it is left as it is): one request.

    Returns ``(CREATED, the object)``, or ``(UNCHANGED, None)`` when it already existed.
    For objects that belong to no one (shared topics): the first that needs it makes it.
    """
    ref = ObjectRef.of(manifest)
    res = kinds.resource(kinds.find(ref.api_version, ref.kind))
    try:
        made = await client.create(res(with_hash(manifest)), field_manager=FIELD_MANAGER)
    except ApiError as exc:
        if exc.status.code == 409:
            return Outcome.UNCHANGED, None
        raise
    return Outcome.CREATED, as_dict(made)


async def delete(client: AsyncClient, ref: ObjectRef) -> bool:
    """Deletes the object; ``False`` when it was already gone."""
    res = kinds.resource(kinds.find(ref.api_version, ref.kind))
    try:
        await client.delete(res, ref.name, namespace=ref.namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise
    return True


async def list_labelled(
    client: AsyncClient, kind: kinds.Kind, namespace: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Objects of ``kind`` in ``namespace`` carrying every label in ``labels``.

    A kind whose CRD is not installed (KEDA, say) has no objects: an empty list.
    """
    res = kinds.resource(kind)
    try:
        return [
            as_dict(obj) async for obj in client.list(res, namespace=namespace, labels=dict(labels))
        ]
    except Exception as exc:
        # Listing a kind that is not served fails with a plain HTTP 404, not an ApiError.
        if _status_code(exc) == 404:
            return []
        raise


def _status_code(exc: BaseException) -> int | None:
    if isinstance(exc, ApiError):
        return exc.status.code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


async def prune(
    client: AsyncClient,
    *,
    namespaces: Iterable[str],
    labels: Mapping[str, str],
    keep: Iterable[ObjectRef],
    child_kinds: Iterable[kinds.Kind] = kinds.CHILD_KINDS,
) -> list[ObjectRef]:
    """Deletes objects labelled ``labels`` in ``namespaces`` that are not in ``keep``.

    Returns what it deleted. This is how a removed stream loses its FlinkDeployment.
    """
    wanted = set(keep)
    deleted: list[ObjectRef] = []
    for namespace in sorted(set(namespaces)):
        for kind in child_kinds:
            try:
                found = await list_labelled(client, kind, namespace, labels)
            except Exception as exc:
                if _status_code(exc) != 403:
                    raise
                # Least privilege: a kind the operator may not list there has no children
                # of its making there either. Say so, and go on with the other kinds.
                log.warning(
                    "not allowed to list %s in namespace %s: leftovers of that kind there "
                    "are not pruned",
                    kind.plural,
                    namespace,
                )
                continue
            for obj in found:
                ref = ObjectRef.of({**obj, "apiVersion": kind.api_version, "kind": kind.kind})
                if ref not in wanted and await delete(client, ref):
                    deleted.append(ref)
    return deleted


async def merge_patch(client: AsyncClient, ref: ObjectRef, patch: Mapping[str, Any]) -> bool:
    """Merge-patches the object (not as the field manager: a one-off change, such as
    detaching a KafkaTopic from Strimzi); ``False`` when it was already gone."""
    res = kinds.resource(kinds.find(ref.api_version, ref.kind))
    try:
        await client.patch(
            res, ref.name, dict(patch), namespace=ref.namespace, patch_type=PatchType.MERGE
        )
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise
    return True
