"""The icu domain's manifests (``agents/icu/deploy``), read for the tests
(:class:`tests.agents.domain_harness.DomainManifests`)."""

from __future__ import annotations

from tests.agents.domain_harness import DomainManifests

MANIFESTS = DomainManifests("icu")
