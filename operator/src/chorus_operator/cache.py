"""What the operator has seen of the cluster: the latest version of each object, in memory.

The operator already watches its children, Agents and Tools (kopf's watch streams feed the
handlers); :class:`Store` keeps the newest body each stream or write showed, so a reconcile
reads its children and Tools from memory instead of a GET per object. Bodies from
watch events and from the operator's own writes arrive in any order: a body replaces the
stored one only when its ``resourceVersion`` is not older (resource versions are etcd
revisions, so they compare as numbers; an opaque one simply replaces).

A miss is not proof of absence (the watch of that kind may not have listed yet, or the
kind is not watched): callers fall back to a GET then. :class:`Expiring` keeps a value for
a few seconds (the Strimzi ``Kafka``, whether KEDA is installed), for what is not watched.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


def kept_copy(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain, independent copy of ``body`` to store, without ``metadata.managedFields``:
    the largest part of most objects, which nothing here reads (and copying it was a good
    part of handling a watch event)."""
    raw = dict(body)
    metadata = {k: v for k, v in (raw.get("metadata") or {}).items() if k != "managedFields"}
    plain: dict[str, Any] = copy.deepcopy({**raw, "metadata": metadata})
    return plain


Key = tuple[str, str, str, str]
"""``(apiVersion, kind, namespace, name)``."""

T = TypeVar("T")


def _version(body: Mapping[str, Any]) -> int | None:
    raw = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class Store:
    """The newest body seen per object (see the module docstring)."""

    _objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _gone: dict[Key, int] = field(default_factory=dict)
    """Resource versions at which objects were seen deleted: an older body does not revive
    them."""

    @staticmethod
    def key(api_version: str, kind: str, namespace: str | None, name: str) -> Key:
        return (api_version, kind, namespace or "", name)

    def newer(self, api_version: str, kind: str, body: Mapping[str, Any]) -> bool:
        """Whether :meth:`put` would store ``body``: no version of it as new is stored (or
        recorded deleted)."""
        meta = body.get("metadata") or {}
        key = self.key(api_version, kind, meta.get("namespace"), meta["name"])
        new = _version(body)
        if new is None:
            return True
        gone = self._gone.get(key)
        if gone is not None and new <= gone:
            return False
        old = self._objects.get(key)
        before = _version(old) if old is not None else None
        return before is None or new > before

    def put(
        self,
        api_version: str,
        kind: str,
        body: Mapping[str, Any],
        keep: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
    ) -> bool:
        """Stores ``keep(body)`` unless a newer version is stored; returns whether it was
        newer than what was stored (False: the store already knew it, and ``keep``, e.g. a
        deep copy, is not called: most watch events echo the operator's own write)."""
        if not self.newer(api_version, kind, body):
            return False
        meta = body.get("metadata") or {}
        key = self.key(api_version, kind, meta.get("namespace"), meta["name"])
        self._objects[key] = {**keep(body), "apiVersion": api_version, "kind": kind}
        self._gone.pop(key, None)
        return True

    def forget(self, api_version: str, kind: str, body: Mapping[str, Any]) -> None:
        """Records that the object ``body`` names was deleted."""
        meta = body.get("metadata") or {}
        key = self.key(api_version, kind, meta.get("namespace"), meta["name"])
        self._objects.pop(key, None)
        version = _version(body)
        if version is not None:
            self._gone[key] = version

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The stored body, or None when the store has not seen it."""
        return self._objects.get(self.key(api_version, kind, namespace, name))

    def names(self, api_version: str, kind: str, namespace: str) -> list[str]:
        """Names of the stored objects of a kind in a namespace."""
        return sorted(
            name
            for (a, k, ns, name) in self._objects
            if (a, k, ns) == (api_version, kind, namespace)
        )

    def __len__(self) -> int:
        return len(self._objects)


@dataclass
class Expiring(Generic[T]):
    """A value fetched at most once per ``ttl`` seconds."""

    ttl: float
    clock: Callable[[], float] = time.monotonic
    _values: dict[Any, tuple[float, T]] = field(default_factory=dict)

    def get(self, key: Any) -> tuple[bool, T | None]:
        """``(True, value)`` while fresh, else ``(False, None)``."""
        entry = self._values.get(key)
        if entry is None or self.clock() - entry[0] > self.ttl:
            return False, None
        return True, entry[1]

    def put(self, key: Any, value: T) -> None:
        self._values[key] = (self.clock(), value)
