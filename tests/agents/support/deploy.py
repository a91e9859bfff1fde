"""The support domain's manifests (``agents/support/deploy``), read for the tests
(:class:`tests.agents.domain_harness.DomainManifests`)."""

from __future__ import annotations

from tests.agents.domain_harness import DomainManifests

MANIFESTS = DomainManifests("support")
