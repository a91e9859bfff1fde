"""Session fixtures for the real services: each starts once per run and stops at the end.

In CI (CI=true) a service that fails to start fails the tests that need it, with its
log; elsewhere those tests are skipped and the reason is printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.services.base import Service, ServiceError, in_ci

if TYPE_CHECKING:
    from tests.services.flink import FlinkEnv
    from tests.services.helm import Helm
    from tests.services.kafka import KafkaBroker
    from tests.services.kube import KubeCluster


def _serve(service: Service[Any]) -> Iterator[Any]:
    try:
        session = service.session()
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
    from tests.services.flink import FlinkService

    yield from _serve(FlinkService())


@pytest.fixture(scope="session")
def helm() -> Helm:
    """helm v3, installed once with `go install` into the cache (a tool, not a service)."""
    from tests.services.helm import install_helm

    try:
        return install_helm()
    except ServiceError as exc:
        if in_ci():
            pytest.fail(f"helm could not be installed:\n{exc}", pytrace=False)
        pytest.skip(f"helm could not be installed: {str(exc).splitlines()[0]}")
