"""kopf's progress annotations, without a write of the Agent when no progress stays.

kopf records a handler's progress (retries, delays) in annotations under Chorus' prefix
(``chorus.dev/reconcile``), and brands the prefix with a ``chorus.dev/kopf-managed``
marker so that other kopf-based operators leave those annotations out of their diffs.
When a handler succeeds at once, kopf stores its outcome and purges it in the same patch,
which leaves only the marker: one extra write (and one watch event for everyone watching
Agents) per Agent created, for an annotation that brands nothing.

:class:`ProgressAnnotations` keeps the marker exactly where progress annotations land on
the object (a retry, a delay), and drops it from a patch that leaves none.
"""

from __future__ import annotations

from typing import Any

import kopf

MARKER = "kopf-managed"
"""The name kopf gives the marker under a storage's prefix."""


class ProgressAnnotations(kopf.AnnotationsProgressStorage):
    """kopf's :class:`~kopf.AnnotationsProgressStorage`; the marker only with progress."""

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        super().purge(key=key, body=body, patch=patch)
        marker = f"{self.prefix}/{MARKER}"
        patched = patch.get("metadata", {}).get("annotations", {})
        present = body.get("metadata", {}).get("annotations", {})
        if marker not in patched or marker in present:
            return
        if self._progress_in({**present, **patched}):  # what the object has after the patch
            return
        del patched[marker]
        if not patched:
            del patch["metadata"]["annotations"]
            if not patch["metadata"]:
                del patch["metadata"]

    def _progress_in(self, annotations: Any) -> bool:
        """Whether ``annotations`` hold a progress key under the prefix (None: unset)."""
        prefix = f"{self.prefix}/"
        return any(
            name.startswith(prefix) and name != f"{prefix}{MARKER}" and value is not None
            for name, value in annotations.items()
        )
