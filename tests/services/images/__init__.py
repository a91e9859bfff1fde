"""The repository's images, built for real by buildah from their Dockerfiles, unchanged.

No container registry is reachable here, so the ``FROM`` images are made first: for
``python:3.11.14-slim-bookworm`` a *stand-in* made with debootstrap from Debian's packages,
tagged with the exact name the Dockerfiles ask for (:mod:`.standin`). Then
``buildah bud --pull=never`` builds ``agents/Dockerfile`` and ``operator/Dockerfile``
(:mod:`.build`), each build cached under a hash of its inputs, and each image is exported as
an OCI archive (what ``ctr images import`` loads).

Everything lives under :data:`HOME` (``<cache>/images``): buildah's storage, its run root,
runc's state, temporary files and the archives, never ``/var/lib/containers``
(:mod:`.buildah`). It needs root, buildah, runc and debootstrap
(``scripts/prereqs.sh --install`` installs them).

``flink/Dockerfile`` is not built: its ``FROM flink:...`` and ``maven:...`` images cannot be
made from Debian's packages in reasonable scope (see docs/testing.md).

By hand::

    python -m tests.services images prepare   # build what is missing (the cluster tier uses them)
    python -m tests.services.images build      # the same, then a table of what took how long
    python -m tests.services.images status     # references, input hashes, archives
"""

from __future__ import annotations

from tests.services.base import CACHE

HOME = CACHE / "images"
"""Storage, archives and stand-in bases: kept between runs (``rm -rf`` it for a cold build)."""
