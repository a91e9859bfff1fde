"""Real services for Chorus' tests: Kafka (KRaft), a kube-apiserver with etcd, Flink.

Each is installed once into the cache and started once per test run; see base.py.
By hand: ``python -m tests.services kafka up`` (then ``down``); pytest reuses a
service that is already up.
"""

from __future__ import annotations

from tests.services.base import Service


def registry() -> dict[str, Service[object]]:
    """Every service by name. Imported lazily: each module pulls in its own client."""
    from tests.services.flink import FlinkService
    from tests.services.kafka import KafkaService
    from tests.services.kube import KubeService

    services: list[Service[object]] = [KafkaService(), KubeService(), FlinkService()]  # type: ignore[list-item]
    return {service.name: service for service in services}
