"""Fixtures for the operator's tests: namespaces, a Ready Kafka CR, a running operator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.operator.harness import PEERING_CRDS, Cluster, Operator, kafka_cluster, unique
from tests.services.kube import KubeCluster


@pytest.fixture(scope="session")
def cluster(kube: KubeCluster) -> Cluster:
    """The shared apiserver, with kopf's peering CRDs installed."""
    kube.kubectl("apply", "--server-side", "--field-manager=chorus-tests", "-f", str(PEERING_CRDS))
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "-f", str(PEERING_CRDS))
    return Cluster(kube)


@dataclass(frozen=True)
class Space:
    """A test's own namespaces: agents live in ``ns``, Kafka and its CRs in ``kafka``."""

    ns: str
    kafka: str


@pytest.fixture
def space(cluster: Cluster) -> Space:
    ns = cluster.namespace(unique("op"))
    kafka = cluster.namespace(unique("kafka"))
    kafka_cluster(cluster, kafka)
    return Space(ns, kafka)


def start_operator(
    cluster: Cluster, space: Space, tmp_path: Path, name: str = "operator", **env: str
) -> Operator:
    """A started operator watching ``space``'s namespaces (SCRAM auth: KafkaUsers are made)."""
    return Operator(
        kubeconfig=cluster.kube.admin_kubeconfig,
        namespaces=(space.ns, space.kafka),
        kafka_namespace=space.kafka,
        log=tmp_path / f"{name}.log",
        env={"CHORUS_KAFKA_AUTHENTICATION": "scram-sha-512", **env},
    ).start()


@pytest.fixture
def operator(cluster: Cluster, space: Space, tmp_path: Path) -> Iterator[Operator]:
    running = start_operator(cluster, space, tmp_path)
    try:
        yield running
    finally:
        running.stop()
