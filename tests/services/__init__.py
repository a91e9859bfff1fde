"""Real services for Chorus' tests: Kafka (KRaft), a kube-apiserver with etcd, Flink.

Each is installed once into the cache and started once per test run; see base.py.
By hand: ``python -m tests.services kafka up`` (then ``down``); pytest reuses a
service that is already up.
"""

from __future__ import annotations

import importlib

from chorus_agents.dev.services.base import Service

# name -> (module, class). Imported only when asked for: each pulls in its own client.
SERVICES = {
    "kafka": ("chorus_agents.dev.services.kafka", "KafkaService"),
    "kafka-secured": ("chorus_agents.dev.services.kafka", "SecuredKafkaService"),
    "kube": ("tests.services.kube", "KubeService"),
    "flink": ("tests.services.flink", "FlinkService"),
}


def service(name: str) -> Service[object]:
    """The service called ``name``; a KeyError lists the names there are."""
    if name not in SERVICES:
        raise KeyError(f"no service {name!r}; there are: {', '.join(SERVICES)}")
    module, cls = SERVICES[name]
    made: Service[object] = getattr(importlib.import_module(module), cls)()
    return made


def registry() -> dict[str, Service[object]]:
    """Every service by name."""
    return {name: service(name) for name in SERVICES}
