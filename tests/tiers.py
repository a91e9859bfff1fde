"""The test tiers: one marker each, and how the test command runs them.

Every test carries exactly one tier marker (``tests/conftest.py`` refuses a test with none
or two, so no test falls outside every tier). The runner (``python -m tests.runner``) runs
the stages one after another, each as its own pytest with its pytest-xdist workers (a stage
may hold several tiers, which then share its workers). It ends with a table of tests,
passed and seconds per tier beside the tier's allowance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """A tier: its marker, what it holds, and its allowance."""

    name: str
    about: str
    allowance_s: float
    """What this tier may take warm (caches filled) on the 2-core development machine, from
    its first test's start to its last test's end: the goal the table holds it to."""


@dataclass(frozen=True)
class Stage:
    """Tiers that run in one pytest, sharing its workers and services."""

    tiers: tuple[Tier, ...]
    workers: int = 0
    """pytest-xdist processes (0: in the runner's own pytest process)."""
    services: tuple[str, ...] = ()
    """Services the runner starts once for the stage; every worker reuses them."""

    @property
    def name(self) -> str:
        return " + ".join(tier.name for tier in self.tiers)

    @property
    def marker_expression(self) -> str:
        return " or ".join(tier.name for tier in self.tiers)


UNIT = Tier("unit", "pure functions: models, generators, desired state (golden files)", 60)
INTEGRATION = Tier("integration", "one component against real services", 330)
E2E = Tier(
    "e2e", "a whole domain run end to end (`chorus dev up`: Kafka, Flink, MCP servers, agents)", 150
)

CLUSTER = Tier(
    "cluster",
    "pods on a real one-node cluster (apiserver, controllers, scheduler, kubelet, containerd, "
    "kube-proxy, CoreDNS) built here, and the images it runs, built by buildah; needs root",
    240,
)

RUNTIME = Tier(
    "runtime",
    "the agent loop under SIGKILLs, rebalances, floods and slow handlers (real broker, agent "
    "processes; mostly waiting, so four at once)",
    90,
)

STAGES = (
    Stage((UNIT,)),
    Stage((INTEGRATION,), workers=3, services=("kafka", "kafka-secured", "kube", "flink")),
    Stage((RUNTIME,), workers=4, services=("kafka",)),
    Stage((E2E,), workers=2, services=("kafka",)),
    Stage((CLUSTER,)),
)
"""In the order the test command runs them. Integration and e2e run apart: together they
asked more CPU of the two cores than either alone, and took longer than both one after the
other (measured: docs/benchmarks.md). The cluster tier starts its cluster and its broker in
its own fixtures (one cluster per machine: its bridge is fixed)."""

TIERS = tuple(tier for stage in STAGES for tier in stage.tiers)
MARKERS = {tier.name: tier.about for tier in TIERS}
CORE = (UNIT, INTEGRATION, E2E)
"""The tiers that must fit in 10 minutes with install and lint; later tiers (the runtime's,
then a real cluster's, faults', replay's) each bring their own allowance on top."""
BUDGET_S = 600 + sum(tier.allowance_s for tier in TIERS if tier not in CORE)
"""The whole test command, warm, install and lint included."""
