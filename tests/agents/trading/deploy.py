"""The trading domain's manifests (``agents/trading/deploy``), read for the tests
(:class:`tests.agents.domain_harness.DomainManifests`)."""

from __future__ import annotations

from tests.agents.domain_harness import DomainManifests

MANIFESTS = DomainManifests("trading")
