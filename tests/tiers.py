"""The test tiers: one marker each, in the order the test command runs them.

Every test carries exactly one tier marker (``tests/conftest.py`` refuses a test with none
or two, so no test falls outside every tier). The runner (``python -m tests.runner``) runs
the tiers one after another, each as its own pytest, and ends with a table of tests,
passed and seconds per tier beside the tier's allowance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """A tier: its marker, what it holds, its allowance and how it runs."""

    name: str
    about: str
    allowance_s: float
    """The most this tier may take warm (caches filled) on the 2-core development machine."""
    workers: int = 0
    """pytest-xdist processes (0: in the runner's own pytest process)."""
    dist: str = "loadscope"
    """How xdist hands tests out: ``loadscope`` keeps a module on one worker (its module
    fixtures run once); ``load`` spreads single tests (for a few long ones)."""
    services: tuple[str, ...] = ()
    """Services the runner starts once for the tier; every worker reuses them."""


TIERS = (
    Tier("unit", "pure functions: models, generators, desired state (golden files)", 60),
    Tier(
        "integration",
        "one component against real services",
        330,
        workers=2,
        services=("kafka", "kafka-secured", "kube", "flink"),
    ),
    Tier(
        "e2e",
        "a whole domain run end to end (`chorus dev up`: Kafka, Flink, MCP servers, agents)",
        180,
        workers=2,
        dist="load",
        services=("kafka", "kube", "flink"),
    ),
)
"""In the order the test command runs them."""

MARKERS = {tier.name: tier.about for tier in TIERS}
