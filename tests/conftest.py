"""Session fixtures for the real services: each starts once per run and stops at the end.

In CI (CI=true) a service that fails to start fails the tests that need it, with its
log; elsewhere those tests are skipped and the reason is printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.services.base import Service, ServiceError, in_ci
from tests.tiers import MARKERS, RUNTIME, STAGES

T = TypeVar("T")

if TYPE_CHECKING:
    from tests.services.flink import FlinkEnv
    from tests.services.helm import Helm
    from tests.services.images.build import Built
    from tests.services.kafka import KafkaBroker
    from tests.services.kube import KubeCluster
    from tests.services.pulumi import PulumiEngine


def pytest_configure(config: pytest.Config) -> None:
    for name, about in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {about}")
    config.addinivalue_line(
        "markers", "seconds(n): about how long a runtime test takes (orders the runtime tier)"
    )


FLINK_GROUP = "flink"
RUNTIME_WORKERS = next(stage.workers for stage in STAGES if RUNTIME in stage.tiers)


def group_of(item: pytest.Item) -> str:
    """The item's pytest-xdist group (``--dist loadgroup``, tests/tiers.py).

    A module's tests stay on one worker (its module fixtures run once); every test that runs
    Flink jobs shares one worker, so that mini-clusters never compete for the two cores (they
    are CPU-bound, and most other tests wait on Kafka or the apiserver); each end-to-end run,
    and each runtime test (an agent process that mostly waits), is a group of its own."""
    if "flink" in getattr(item, "fixturenames", ()):
        return FLINK_GROUP
    if item.get_closest_marker("e2e") is not None or item.get_closest_marker("runtime"):
        return item.nodeid
    return item.nodeid.split("::", 1)[0]


def pytest_itemcollected(item: pytest.Item) -> None:
    # Here, not in modifyitems: xdist turns the groups into its scopes in its own
    # pytest_collection_modifyitems, which may run before ours.
    item.add_marker(pytest.mark.xdist_group(group_of(item)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    arrange(items)


def arrange(items: list[pytest.Item]) -> None:
    """Every test is in exactly one tier: one left out of all would never run. The longest
    work goes out first: the Flink group, then the end-to-end runs, then the rest."""
    wrong = []
    first: list[pytest.Item] = []
    then: list[pytest.Item] = []
    rest: list[pytest.Item] = []
    for item in items:
        tiers = [name for name in MARKERS if item.get_closest_marker(name) is not None]
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: {', '.join(tiers) or 'no tier marker'}")
        group = group_of(item)
        (first if group == FLINK_GROUP else then if tiers == ["e2e"] else rest).append(item)
    if wrong:
        raise pytest.UsageError(
            f"each test needs exactly one tier marker ({', '.join(MARKERS)}):\n" + "\n".join(wrong)
        )
    items[:] = first + then + paired(rest, RUNTIME_WORKERS)


def seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("seconds")
    return float(marker.args[0]) if marker is not None else 0.0


def paired(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The runtime tier's tests (``seconds`` markers, what each took when last measured)
    ordered for xdist, which hands worker ``i`` the tests ``i`` and ``i + workers`` first and
    each worker one more whenever it finishes one: the longest ``workers`` tests come first,
    then the shortest ``workers`` ascending (so the longest test is paired with the shortest),
    then the rest, longest first, to whoever is free. Other tests keep their order, before
    them."""
    timed = sorted((i for i in items if seconds(i)), key=seconds, reverse=True)
    if not timed:
        return items
    untimed = [i for i in items if not seconds(i)]
    head, tail = timed[:workers], timed[workers:]
    shortest = sorted(tail, key=seconds)[:workers]
    rest = [i for i in tail if i not in shortest]
    return untimed + head + shortest + rest


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each test phase's outcome and times, for the runner's table (``CHORUS_TIER_LOG``).

    Written by the controlling process only: xdist hands it every worker's reports."""
    path = os.environ.get("CHORUS_TIER_LOG")
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    tier = next((name for name in MARKERS if name in report.keywords), "")
    line = {
        "nodeid": report.nodeid,
        "tier": tier,
        "when": report.when,
        "outcome": report.outcome,
        "start": report.start,
        "stop": report.stop,
    }
    with open(path, "a") as log:
        log.write(json.dumps(line) + "\n")


def _required(check: Callable[[], T], missing: str) -> T:
    """What ``check`` returns; when it raises ServiceError (something is not built or not
    installed), the test fails in CI and skips elsewhere, saying ``missing`` and why."""
    try:
        return check()
    except ServiceError as exc:
        if in_ci():
            pytest.fail(f"{missing}:\n{exc}", pytrace=False)
        pytest.skip(f"{missing}: {str(exc).splitlines()[0]}")


def _serve(service: Service[Any]) -> Generator[Any, None, None]:
    try:
        # Installed before pytest (scripts/test.sh: `python -m tests.services prepare`):
        # a fixture never builds for minutes under pytest's timeout; it only checks.
        session = service.session(install=False)
        handle = session.__enter__()
    except ServiceError as exc:
        if in_ci():
            pytest.fail(f"service {service.name} did not start:\n{exc}", pytrace=False)
        pytest.skip(f"service {service.name} did not start: {str(exc).splitlines()[0]}")
    try:
        yield handle
    finally:
        session.__exit__(None, None, None)


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    from tests.services.kafka import KafkaService

    yield from _serve(KafkaService())


@pytest.fixture(scope="session")
def kafka_secured() -> Iterator[KafkaBroker]:
    """A broker with SASL/SCRAM and ACLs; the handle is its super user ``admin``."""
    from tests.services.kafka import SecuredKafkaService

    yield from _serve(SecuredKafkaService())


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    from tests.services.kube import KubeService

    yield from _serve(KubeService())


@pytest.fixture(scope="session")
def flink() -> Iterator[FlinkEnv]:
    """Flink, with a job server: bounded jobs run one after another in one warm JVM (each
    with its own mini-cluster), 2 to 3 s a job instead of 10 or more in a JVM of its own."""
    from tests.services.flink import FlinkService, job_server

    served = _serve(FlinkService())
    env = next(served)
    try:
        with job_server(env) as shared:
            yield shared
    finally:
        served.close()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The one-node cluster (tests/services/cluster), torn down after the session. Outside
    CI a machine without root or the packages skips, naming what is missing; in CI it fails."""
    from tests.services.cluster import build, host
    from tests.services.cluster.node import running_cluster

    _required(host.preflight, "the cluster cannot start")
    _required(build.check, "the cluster cannot start")
    with running_cluster(print) as started:
        yield started


@pytest.fixture(scope="session")
def built_images() -> Built:
    """The agent and operator images, built by buildah before pytest (``prepare``)."""
    from tests.services.images.build import check

    return _required(check, "the images are not built")


@pytest.fixture(scope="session")
def pod_kafka() -> Iterator[KafkaBroker]:
    """A broker that also listens (and advertises) on the cluster's bridge, for pods."""
    from tests.services.cluster.gonogo import PodKafkaService

    yield from _serve(PodKafkaService())


@pytest.fixture(scope="session")
def helm() -> Helm:
    """helm v3, installed before pytest with `go install` into the cache (a tool)."""
    from tests.services.helm import check_helm

    return _required(check_helm, "helm is not installed")


@pytest.fixture(scope="session")
def pulumi_engine() -> PulumiEngine:
    """The real Pulumi CLI with its Kubernetes provider installed in a ``PULUMI_HOME``, built
    before pytest by `python -m tests.services prepare` (about 25 minutes cold). Without it
    the tests that use it skip outside CI, naming the command, and fail in CI."""
    from tests.services.pulumi import check_pulumi

    return _required(check_pulumi, "the Pulumi engine is not built")
