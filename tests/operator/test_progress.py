"""kopf's progress annotations: the marker only where progress stays on the object."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
from chorus_operator.progress import ProgressAnnotations

PREFIX = "chorus.dev"
MARKER = f"{PREFIX}/kopf-managed"


def agent(annotations: dict[str, str] | None = None) -> kopf.Body:
    metadata = {"name": "a", "namespace": "n", "annotations": annotations or {}}
    return kopf.Body(cast(kopf.RawBody, {"metadata": metadata}))


def record(success: bool) -> Any:
    return {"started": "2026-11-24T00:00:00", "success": success, "failure": False, "retries": 1}


@pytest.mark.unit
def test_a_handler_that_succeeds_at_once_writes_nothing() -> None:
    storage, body, patch = ProgressAnnotations(prefix=PREFIX), agent(), kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record=record(True), body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert dict(patch) == {}


@pytest.mark.unit
def test_kopfs_own_storage_would_write_the_marker_alone() -> None:
    # The write this storage saves: if kopf stops doing this, the class can go.
    storage, body, patch = kopf.AnnotationsProgressStorage(prefix=PREFIX), agent(), kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record=record(True), body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert dict(patch) == {"metadata": {"annotations": {MARKER: "yes"}}}


@pytest.mark.unit
def test_progress_that_stays_keeps_the_marker() -> None:
    storage, body, patch = ProgressAnnotations(prefix=PREFIX), agent(), kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record=record(False), body=body, patch=patch)
    storage.store(key=kopf.HandlerId("cleanup"), record=record(True), body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("cleanup"), body=body, patch=patch)
    annotations = patch["metadata"]["annotations"]
    assert set(annotations) == {f"{PREFIX}/reconcile", MARKER}
    assert (
        storage.fetch(
            key=kopf.HandlerId("reconcile"), body=kopf.Body(cast(kopf.RawBody, dict(patch)))
        )
        is not None
    )


@pytest.mark.unit
def test_purging_the_last_progress_leaves_an_existing_marker_alone() -> None:
    storage = ProgressAnnotations(prefix=PREFIX)
    body = agent({f"{PREFIX}/reconcile": '{"retries":1}', MARKER: "yes"})
    patch = kopf.Patch()
    storage.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert dict(patch) == {"metadata": {"annotations": {f"{PREFIX}/reconcile": None}}}


@pytest.mark.unit
def test_a_touch_keeps_its_marker() -> None:
    # kopf touches the object to wake itself after a delay: that annotation stays.
    storage, body, patch = ProgressAnnotations(prefix=PREFIX), agent(), kopf.Patch()
    storage.touch(body=body, patch=patch, value="wake")
    storage.store(key=kopf.HandlerId("reconcile"), record=record(True), body=body, patch=patch)
    storage.purge(key=kopf.HandlerId("reconcile"), body=body, patch=patch)
    assert MARKER in patch["metadata"]["annotations"]
