"""The one-node cluster's configuration, without starting it: nothing names a machine default,
pods reach what runs outside through Service names only, and the teardown's iptables diff
finds exactly what was added."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.services.cluster import NODE_IP, configs, host
from tests.services.cluster.gonogo import kafka_service, probe_pod
from tests.services.kafka import KafkaBroker, server_properties

pytestmark = pytest.mark.unit

LAYOUT = configs.Layout.new(Path("/cache/work/cluster-1"), Path("/cache/cluster/bin/x"))
SYSTEM_DEFAULTS = (
    "/var/lib/containerd",
    "/run/containerd",
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/log/pods",
)


def every_config() -> str:
    return "\n".join(
        [
            configs.containerd_config(LAYOUT, "chorus.local/pause:x"),
            configs.cni_config(LAYOUT),
            yaml.safe_dump(configs.kubelet_config(LAYOUT)),
            yaml.safe_dump(configs.kube_proxy_config(LAYOUT)),
            *(
                " ".join(args(LAYOUT))
                for args in (
                    configs.etcd_args,
                    configs.pki_args,
                    configs.apiserver_args,
                    configs.controller_manager_args,
                    configs.scheduler_args,
                    configs.kubelet_args,
                    configs.kube_proxy_args,
                )
            ),
        ]
    )


def test_no_component_is_given_a_machine_default_path() -> None:
    text = every_config()
    assert [path for path in SYSTEM_DEFAULTS if path in text] == []
    assert str(LAYOUT.containerd_socket) in text


def test_the_cni_network_is_the_harness_bridge_with_addresses_kept_in_the_run() -> None:
    network = json.loads(configs.cni_config(LAYOUT))
    (bridge,) = network["plugins"]
    assert bridge["bridge"] == "chorus0"
    assert bridge["ipam"]["dataDir"].startswith(str(LAYOUT.work))
    assert bridge["ipam"]["ranges"][0][0]["gateway"] == NODE_IP


def test_the_kafka_pod_listener_is_advertised_as_it_listens() -> None:
    props = server_properties(
        port=9092, controller_port=9093, data=Path("/d"), pod_listener=f"{NODE_IP}:9094"
    )
    assert f"POD://{NODE_IP}:9094" in props["listeners"].split(",")
    assert props["advertised.listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:9092",
        f"POD://{NODE_IP}:9094",
    ]
    assert "POD:PLAINTEXT" in props["listener.security.protocol.map"]
    plain = server_properties(port=9092, controller_port=9093, data=Path("/d"))
    assert plain["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"


def test_pods_reach_the_broker_through_a_service_without_host_tricks() -> None:
    broker = KafkaBroker("127.0.0.1:9092", 1, "/log", pod_bootstrap_servers=f"{NODE_IP}:9094")
    service, endpoints = kafka_service(broker)
    assert "selector" not in service["spec"]
    assert endpoints["metadata"]["labels"] == {"kubernetes.io/service-name": "kafka"}
    assert endpoints["endpoints"][0]["addresses"] == [NODE_IP]
    pod = probe_pod("chorus.local/chorus-probe:x")["spec"]
    assert not {"hostNetwork", "hostAliases", "dnsConfig"} & set(pod)
    assert all(NODE_IP not in arg for arg in pod["containers"][0]["args"])


def test_the_teardown_removes_only_the_rules_and_chains_added_since_the_snapshot() -> None:
    before = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j OLD\nCOMMIT\n"
    after = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n"
        "-A PREROUTING -j OLD\n"
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
        "COMMIT\n"
    )
    old_chains, old_rules = host.saved_rules(before)["nat"]
    chains, rules = host.saved_rules(after)["nat"]
    assert chains - old_chains == {"KUBE-SERVICES"}
    assert [rule for rule in rules if rule not in old_rules] == [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
    ]


def test_the_build_is_found_again_from_another_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The binaries' cache key covers the sources and flags, not where the checkout is: a
    fresh clone (CI) finds the build a first one made."""
    import shutil

    from tests.services.cluster import build

    here = build.bin_dir()
    copy = tmp_path / "elsewhere" / "tests" / "cluster"
    shutil.copytree(build.MODULE, copy)
    monkeypatch.setattr(build, "MODULE", copy)
    targets = tuple(
        build.Target(t.name, t.package, copy / t.module.relative_to(build.TARGETS[0].module),
                     t.static, t.stamped)
        for t in build.TARGETS
    )  # fmt: skip
    monkeypatch.setattr(build, "TARGETS", targets)
    assert build.bin_dir() == here
    (copy / "cmd" / "pause" / "main.go").write_text("package main\n")
    assert build.bin_dir() != here  # a changed source is a new build
