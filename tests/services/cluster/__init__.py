"""A real one-node Kubernetes cluster on this machine, for the real-cluster test tier.

Every binary comes from the Go modules in ``tests/cluster`` (Kubernetes' own commands of the
release ``tests/kube`` pins, an embedded etcd, CoreDNS, a pause and the go/no-go probe),
built once into ``<cache>/cluster/bin/<hash>/``. containerd, runc and the CNI plugins are
Debian's. Nothing uses the machine's defaults: containerd's root, state, socket and
config, the CNI config and IP allocations, the kubelet's root and pod logs all live in the
run's directory under ``<cache>/work/``; the pods' bridge is :data:`BRIDGE`, made by the
harness and removed with every iptables rule and sysctl the cluster changed.

``python -m tests.services.cluster gonogo`` starts it all, runs the probe pod and tears it
down; see ``docs/cluster-gonogo.md``. It needs root (a bridge, iptables, containers).
"""

from __future__ import annotations

from tests.services.base import CACHE

HOME = CACHE / "cluster"
"""Builds (``bin/<hash>``), images (``images/<hash>``): kept between runs."""

BRIDGE = "chorus0"
"""The pods' bridge; its address is the node's (:data:`NODE_IP`)."""
POD_CIDR = "10.234.0.0/24"
NODE_IP = "10.234.0.1"
"""The bridge's address: the pods' gateway, and where the apiserver, the kubelet and the
harness' Kafka listen for pods."""
SERVICE_CIDR = "10.235.0.0/24"
KUBERNETES_SERVICE_IP = "10.235.0.1"
DNS_SERVICE_IP = "10.235.0.10"
CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "chorus-node"
