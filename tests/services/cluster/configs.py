"""What each component of the cluster is started with: pure functions of a :class:`Layout`.

Every path is inside the run's directory and every port is picked free, so nothing here
names a machine default (``/var/lib/containerd``, ``/run/containerd``, ``/etc/cni``,
``/var/lib/kubelet``, ``/var/log/pods``); :mod:`tests.services.cluster.host` lists the few
places the runtime writes regardless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.services.base import free_port
from tests.services.cluster import (
    BRIDGE,
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    KUBERNETES_SERVICE_IP,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
)

CNI_BIN = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"


@dataclass(frozen=True)
class Layout:
    """Where one run of the cluster keeps everything, and the ports it listens on."""

    work: Path
    bin: Path
    etcd_port: int
    apiserver_port: int
    controller_manager_port: int
    scheduler_port: int
    kubelet_port: int
    kubelet_healthz_port: int
    proxy_healthz_port: int
    proxy_metrics_port: int

    @classmethod
    def new(cls, work: Path, bin_dir: Path) -> Layout:
        return cls(work, bin_dir, *(free_port() for _ in range(8)))

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Layout:
        """The layout :func:`dataclasses.asdict` saved (paths as strings)."""
        ports = {k: int(v) for k, v in saved.items() if k not in {"work", "bin"}}
        return cls(work=Path(saved["work"]), bin=Path(saved["bin"]), **ports)

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{self.apiserver_port}"

    @property
    def pki(self) -> Path:
        return self.work / "pki"

    def kubeconfig(self, user: str) -> Path:
        return self.pki / f"{user}.kubeconfig"

    @property
    def containerd(self) -> Path:
        return self.work / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.work / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.work / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.work / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.work / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.work / "pod-logs"

    def log(self, component: str) -> Path:
        return self.work / "logs" / f"{component}.log"


def etcd_args(layout: Layout) -> list[str]:
    return [
        str(layout.bin / "chorus-etcd"),
        f"--data-dir={layout.work / 'etcd'}",
        f"--port={layout.etcd_port}",
    ]


def pki_args(layout: Layout) -> list[str]:
    return [
        str(layout.bin / "chorus-pki"),
        f"--dir={layout.pki}",
        f"--server={layout.server}",
        f"--apiserver-ips=127.0.0.1,{NODE_IP},{KUBERNETES_SERVICE_IP}",
        f"--node={NODE_NAME}",
        f"--node-ip={NODE_IP}",
    ]


def apiserver_args(layout: Layout) -> list[str]:
    """A kube-apiserver for a node: it listens on the bridge (pods reach it there through
    the ``kubernetes`` Service), signs ServiceAccount tokens, and admits pods as usual."""
    pki = layout.pki
    return [
        str(layout.bin / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{layout.etcd_port}",
        f"--bind-address={NODE_IP}",
        f"--advertise-address={NODE_IP}",
        f"--secure-port={layout.apiserver_port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        f"--service-account-key-file={pki / 'sa.key'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(layout: Layout) -> list[str]:
    """The default controllers (ServiceAccounts and their tokens, namespaces, Deployments,
    ReplicaSets, EndpointSlices, garbage collection, the root CA ConfigMap pods mount)."""
    kubeconfig = layout.kubeconfig("controller-manager")
    pki = layout.pki
    return [
        str(layout.bin / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.controller_manager_port}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allocate-node-cidrs=false",
        "--cluster-name=chorus",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_args(layout: Layout) -> list[str]:
    kubeconfig = layout.kubeconfig("scheduler")
    return [
        str(layout.bin / "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.scheduler_port}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def containerd_config(layout: Layout, sandbox_image: str) -> str:
    """containerd 1.6's config (version 2): root, state, sockets, the runc root, the CNI
    config and the netns mounts all in the run's directory."""
    c = layout.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
# Written by tests/services/cluster/configs.py for one run of the test cluster.
version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{c / "opt"}"
  [{cri}]
    sandbox_image = "{sandbox_image}"
    # No container gets an oom_score_adj below containerd's own (the kubelet asks for
    # -998 for the sandboxes): found necessary on this machine, see docs/cluster-gonogo.md.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    enable_selinux = false
    [{cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [{cri}.containerd.runtimes.runc.options]
          BinaryName = "{RUNC}"
          Root = "{c / "runc"}"
          SystemdCgroup = false
    [{cri}.cni]
      bin_dir = "{CNI_BIN}"
      conf_dir = "{layout.cni_conf_dir}"
      max_conf_num = 1
"""


def cni_config(layout: Layout) -> str:
    """One bridge network on :data:`BRIDGE` (made by the harness beforehand), addresses from
    :data:`POD_CIDR` kept in the run's directory, masquerading for what leaves the node."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "chorus",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(layout.cni_ipam_dir),
                    },
                }
            ],
        },
        indent=2,
    )


def kubelet_config(layout: Layout) -> dict[str, Any]:
    """KubeletConfiguration: what this machine needs (cgroups v1 hybrid, cgroupfs, no QoS
    cgroups), every path in the run's directory, eviction only when the disk is nearly full."""
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.kubelet_healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [DNS_SERVICE_IP],
        "resolvConf": "/etc/resolv.conf",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "podLogsDir": str(layout.pod_logs),
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "maxPods": 30,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def kubelet_args(layout: Layout) -> list[str]:
    return [
        str(layout.bin / "kubelet"),
        f"--config={layout.work / 'kubelet.yaml'}",
        f"--kubeconfig={layout.kubeconfig('kubelet')}",
        f"--root-dir={layout.kubelet_root}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]


def kube_proxy_config(layout: Layout) -> dict[str, Any]:
    """iptables mode; Services reachable from pods and the node, NodePorts only on the
    bridge; conntrack sysctls and route_localnet left as they are."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{layout.proxy_healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{layout.proxy_metrics_port}",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False},
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def kube_proxy_args(layout: Layout) -> list[str]:
    return [str(layout.bin / "kube-proxy"), f"--config={layout.work / 'kube-proxy.yaml'}"]


COREFILE = f"""\
.:53 {{
    errors
    health {{
        lameduck 2s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}}
"""


def coredns_manifests(image: str) -> list[dict[str, Any]]:
    """CoreDNS as clusters run it: a Deployment in kube-system behind the ``kube-dns``
    Service at :data:`DNS_SERVICE_IP`, reading the API as its own ServiceAccount."""
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": "kube-system"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", **meta}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREFILE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "initialDelaySeconds": 30,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "170Mi"},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
    ]
