"""kopf's last-handled state of each Agent and Tool, kept in memory instead of an annotation.

kopf compares an object with the state it last handled to tell a create from an update
from nothing new. By default it keeps that state in an annotation, which costs one write
of the Agent after every change it handles: 500 writes for a no-op annotation on 500
Agents, and 500 more while creating them. Chorus' reconciles are level-based (each reads
everything and applies the whole desired state, writing only real differences), so the
memory kopf loses on a restart (or on a peering takeover) costs one reconcile per object,
as a create, and no writes when nothing differs.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf


class MemoryDiffBaseStorage(kopf.DiffBaseStorage):
    """The last handled essence per object ``uid``, in this process only."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(str(body.metadata.uid))

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[str(body.metadata.uid)] = copy.deepcopy(essence)

    def forget(self, body: kopf.Body | dict[str, Any]) -> None:
        """Drops a deleted object's state (its uid never comes back)."""
        self._essences.pop(str(body["metadata"].get("uid")), None)

    def __len__(self) -> int:
        return len(self._essences)
