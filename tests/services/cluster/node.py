"""Starting the one-node cluster in order, and tearing every part of it down.

:func:`running_cluster` is the whole life: the host's snapshot and bridge, etcd, the
certificates, kube-apiserver, kube-controller-manager and kube-scheduler, containerd with
the images imported, the kubelet (until the node is Ready), kube-proxy, CoreDNS (until it
is available). Each process is written to ``<cache>/run/cluster.json`` as soon as it
starts, so :func:`teardown` (at the end, on any failure, or from ``python -m
tests.services.cluster clean`` after a crash) finds them all.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tests.services.base import (
    CACHE,
    RUN_DIR,
    ServiceError,
    pid_alive,
    prune_workdirs,
    run_checked,
    spawn,
    stop_process,
    wait_until,
)
from tests.services.cluster import NODE_NAME, build, host
from tests.services.cluster.configs import (
    Layout,
    apiserver_args,
    cni_config,
    containerd_config,
    controller_manager_args,
    coredns_manifests,
    etcd_args,
    kube_proxy_args,
    kube_proxy_config,
    kubelet_args,
    kubelet_config,
    pki_args,
    scheduler_args,
)
from tests.services.kube import KubeCluster, KubeService

STATE = RUN_DIR / "cluster.json"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Cluster:
    """A running cluster: the admin's kubectl, where everything is, and the images."""

    api: KubeCluster
    layout: Layout
    images: Mapping[str, str]
    """Binary name -> image reference, for the images in :data:`build.IMAGE_NAMES`."""


def load_images(cluster: Cluster, archives: Iterable[Path]) -> None:
    """Imports OCI archives (the project's images, built by buildah) into the cluster's
    containerd, under the references they carry: pods then run them with ``Never`` pull."""
    for archive in archives:
        result = _ctr(cluster.layout, "images", "import", str(archive), timeout=300)
        if result.returncode != 0:
            raise ServiceError(f"cluster: ctr images import {archive}: {result.stderr}")


@dataclass
class Record:
    """What a run did: seconds per start step, in order, and its teardown."""

    steps: dict[str, float] = field(default_factory=dict)
    teardown: TeardownReport | None = None

    @contextlib.contextmanager
    def step(self, name: str, say: Say) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.steps[name] = time.monotonic() - started
        say(f"  {name}: {self.steps[name]:.1f}s")


def _http_ok(url: str, *, body: str | None = None) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a readiness probe of our own loopback port
    with urllib.request.urlopen(url, timeout=3, context=context) as response:
        text = response.read().decode(errors="replace").strip()
        return bool(response.status == 200 and (body is None or body in text))


def _write_state(layout: Layout, kubectl: str, pids: Mapping[str, int]) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    state = {"layout": asdict(layout), "kubectl": kubectl, "pids": dict(pids)}
    STATE.write_text(json.dumps(state, indent=1, default=str))


def _ctr(layout: Layout, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", f"--address={layout.containerd_socket}", "--namespace=k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Node:
    """Starts the components one after another; each is recorded before it is waited for."""

    def __init__(self, layout: Layout, kubectl: str, say: Say) -> None:
        self.layout = layout
        self.kubectl_path = kubectl
        self.say = say
        self.pids: dict[str, int] = {}
        self.record = Record()
        self.api = KubeCluster(
            server=layout.server,
            admin_kubeconfig=str(layout.kubeconfig("admin")),
            restricted_kubeconfig=str(layout.kubeconfig("restricted")),
            kubectl_path=kubectl,
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        process = spawn(args, log=self.layout.log(name), cwd=self.layout.work)
        self.pids[name] = process.pid
        _write_state(self.layout, self.kubectl_path, self.pids)
        return process

    def _wait(
        self,
        name: str,
        check: Callable[[], bool],
        process: subprocess.Popen[bytes],
        timeout: float,
        *,
        what: str = "",
    ) -> None:
        """Waits for ``check``, failing early (with the end of its log) if the process of
        component ``name`` exits."""
        wait_until(
            check,
            what=f"cluster: {what or name}",
            timeout=timeout,
            process=process,
            log=self.layout.log(name),
        )

    def start(self) -> Cluster:
        layout, step, say = self.layout, self.record.step, self.say
        images = {name: build.image_ref(name) for name in build.IMAGE_NAMES}
        with step("host: bridge and forwarding", say):
            host.snapshot().save(layout.work / "host-snapshot.json")
            _write_state(layout, self.kubectl_path, self.pids)
            host.create_bridge()
            host.set_sysctl("net/ipv4/ip_forward", "1")
        with step("etcd", say):
            etcd = self._spawn("etcd", etcd_args(layout))
            health = f"http://127.0.0.1:{layout.etcd_port}/health"
            self._wait("etcd", lambda: _http_ok(health, body='"true"'), etcd, 60)
        with step("certificates and kubeconfigs", say):
            run_checked(pki_args(layout), what="cluster: chorus-pki", log=layout.log("pki"))
        with step("kube-apiserver (/readyz)", say):
            apiserver = self._spawn("kube-apiserver", apiserver_args(layout))
            self._wait("kube-apiserver", self._apiserver_ready, apiserver, 180)
        with step("kube-controller-manager and kube-scheduler (/healthz)", say):
            manager = self._spawn("kube-controller-manager", controller_manager_args(layout))
            scheduler = self._spawn("kube-scheduler", scheduler_args(layout))
            for name, process, port in (
                ("kube-controller-manager", manager, layout.controller_manager_port),
                ("kube-scheduler", scheduler, layout.scheduler_port),
            ):
                url = f"https://127.0.0.1:{port}/healthz"
                self._wait(name, functools.partial(_http_ok, url, body="ok"), process, 120)
        with step("containerd", say):
            config = layout.containerd / "config.toml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(containerd_config(layout, images["pause"]))
            layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
            (layout.cni_conf_dir / "10-chorus.conflist").write_text(cni_config(layout))
            containerd = self._spawn("containerd", ["containerd", f"--config={config}"])
            self._wait(
                "containerd", lambda: _ctr(layout, "version").returncode == 0, containerd, 60
            )
        with step("images into containerd", say):
            for name in build.IMAGE_NAMES:
                archive = build.images_dir() / f"{name}.tar"
                result = _ctr(layout, "images", "import", str(archive), timeout=300)
                if result.returncode != 0:
                    raise ServiceError(f"cluster: ctr images import {archive}: {result.stderr}")
            listed = _ctr(layout, "images", "ls", "-q").stdout.split()
            missing = [ref for ref in images.values() if ref not in listed]
            if missing:
                raise ServiceError(f"cluster: images not in containerd after import: {missing}")
        with step("kubelet (node Ready)", say):
            (layout.work / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(layout)))
            kubelet = self._spawn("kubelet", kubelet_args(layout))
            self._wait("kubelet", self._node_ready, kubelet, 180)
        with step("kube-proxy (/healthz)", say):
            (layout.work / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(layout)))
            proxy = self._spawn("kube-proxy", kube_proxy_args(layout))
            url = f"http://127.0.0.1:{layout.proxy_healthz_port}/healthz"
            self._wait("kube-proxy", lambda: _http_ok(url), proxy, 120)
        with step("CoreDNS (available)", say):
            self.api.apply(coredns_manifests(images["coredns"]))
            try:
                self._wait(
                    "kubelet", self._coredns_available, kubelet, 180, what="CoreDNS available"
                )
            except ServiceError as exc:
                raise ServiceError(f"{exc}\n{self._events('kube-system')}") from exc
        return Cluster(self.api, layout, images)

    def _events(self, namespace: str) -> str:
        """The namespace's events, oldest first: why a pod did not start."""
        result = self.api.kubectl(
            "-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False
        )
        return f"events in {namespace}:\n{result.stdout or result.stderr}"

    def _apiserver_ready(self) -> bool:
        if not self.layout.kubeconfig("admin").exists():
            return False
        result = self.api.kubectl("get", "--raw=/readyz", check=False, timeout=15)
        return result.returncode == 0 and result.stdout.strip() == "ok"

    def _node_ready(self) -> bool:
        result = self.api.kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return result.stdout.strip() == "True"

    def _coredns_available(self) -> bool:
        result = self.api.kubectl(
            "-n",
            "kube-system",
            "get",
            "deployment",
            "coredns",
            "-o",
            "jsonpath={.status.availableReplicas}",
            check=False,
        )
        return result.stdout.strip() == "1"


@contextlib.contextmanager
def running_cluster(say: Say = print, record: Record | None = None) -> Iterator[Cluster]:
    """The cluster for the duration of the block, torn down after it (also on failure).

    ``record`` receives each start step's seconds and the teardown's report. Refuses to
    start while a state file names another cluster (one per machine: the bridge is fixed).
    """
    host.preflight()
    if STATE.exists():
        state = json.loads(STATE.read_text())
        alive = [name for name, pid in state["pids"].items() if pid_alive(pid)]
        raise ServiceError(
            f"cluster: {STATE} names a cluster ({', '.join(alive) or 'no live process'}); "
            "stop it with `python -m tests.services.cluster clean`"
        )
    build.check()
    kube = KubeService()
    kube.install()  # kubectl of the same release (tests/kube); cached
    kubectl = str(kube.bin_dir() / "kubectl")
    prune_workdirs(CACHE / "work", "cluster")
    work = CACHE / "work" / f"cluster-{os.getpid()}-{time.time_ns()}"
    work.mkdir(parents=True)
    node = Node(Layout.new(work, build.bin_dir()), kubectl, say)
    if record is not None:
        node.record = record
    say(f"cluster: starting in {work}")
    try:
        yield node.start()
    finally:
        say("cluster: tearing down")
        report = teardown(say)
        node.record.teardown = report
        for line in report.left:
            say(f"  LEFT: {line}")


@dataclass
class TeardownReport:
    done: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    """What could not be undone: a process still alive, a file left in a system path."""
    seconds: float = 0.0


def teardown(say: Say = print) -> TeardownReport:
    """Stops the cluster named by the state file and undoes its changes to the host.

    Pods first (the kubelet then stops their sandboxes: CNI releases their addresses and
    masquerading rules), then kube-proxy (and its ``--cleanup``), the kubelet, whatever
    containers are left, containerd, the control plane; then the mounts under the run's
    directory, the bridge, the iptables rules and sysctls (:func:`host.restore`).
    """
    report = TeardownReport()
    started = time.monotonic()
    if not STATE.exists():
        report.done.append(f"no cluster ({STATE} is absent)")
        return report
    state = json.loads(STATE.read_text())
    layout = Layout.from_dict(state["layout"])
    pids: dict[str, int] = state["pids"]
    api = KubeCluster(
        server=layout.server,
        admin_kubeconfig=str(layout.kubeconfig("admin")),
        restricted_kubeconfig=str(layout.kubeconfig("restricted")),
        kubectl_path=state["kubectl"],
    )

    def stop(name: str) -> None:
        pid = pids.get(name)
        if pid is not None and pid_alive(pid):
            stop_process(pid)
            report.done.append(f"stopped {name} (pid {pid})")

    stop("kube-controller-manager")  # nothing recreates the pods deleted next
    stop("kube-scheduler")
    if pid_alive(pids.get("kube-apiserver", -1)) and pid_alive(pids.get("kubelet", -1)):
        api.kubectl(
            "delete", "pods", "--all", "--all-namespaces", "--grace-period=2", "--wait=false",
            check=False, timeout=60,
        )  # fmt: skip
        try:
            wait_until(
                lambda: not _running_tasks(layout),
                what="cluster teardown: the kubelet stopping every pod",
                timeout=60,
            )
            report.done.append("deleted every pod; the kubelet stopped their sandboxes")
        except ServiceError as exc:
            report.left.append(str(exc).splitlines()[0])
    stop("kube-proxy")
    if (layout.bin / "kube-proxy").exists():
        with layout.log("kube-proxy-cleanup").open("ab") as out:
            subprocess.run(
                [str(layout.bin / "kube-proxy"), "--cleanup"], stdout=out, stderr=out, check=False
            )
        report.done.append("kube-proxy --cleanup")
    stop("kubelet")
    if pid_alive(pids.get("containerd", -1)):
        for task in _running_tasks(layout):
            _ctr(layout, "tasks", "kill", "--signal=SIGKILL", task)
            time.sleep(0.5)
            _ctr(layout, "tasks", "delete", "--force", task)
            report.done.append(f"killed container {task[:12]} (left by the kubelet)")
    stop("containerd")
    # Shims whose containers outlived containerd: they name its socket (-address).
    for pid in _processes_naming(layout.containerd_socket, besides=pids.values()):
        _kill(pid)
        report.done.append(f"stopped pid {pid} (a shim of this run's containerd)")
    stop("kube-apiserver")
    stop("etcd")
    report.done += host.unmount_under(layout.work)
    if host.delete_bridge():
        report.done.append("deleted the bridge (and the veths on it)")
    report.done += host.remove_log_links(layout.work)
    snapshot_file = layout.work / "host-snapshot.json"
    if snapshot_file.exists():
        done, left = host.restore(host.HostSnapshot.load(snapshot_file))
        report.done += done
        report.left += left
    with contextlib.suppress(OSError):
        subprocess.run(["rm", "-rf", str(layout.containerd / "root")], check=False)
    report.left += [
        f"process {name} (pid {pid}) still alive" for name, pid in pids.items() if pid_alive(pid)
    ]
    report.left += [
        f"pid {pid} still alive (it names {layout.work})"
        for pid in _processes_naming(layout.work, besides=())
    ]
    STATE.unlink(missing_ok=True)
    report.seconds = time.monotonic() - started
    say(
        f"cluster: torn down in {report.seconds:.1f}s ({len(report.done)} changes undone); "
        f"logs in {layout.work / 'logs'}"
    )
    return report


def _running_tasks(layout: Layout) -> list[str]:
    """The ids of containerd's running tasks (containers and pod sandboxes)."""
    listing = _ctr(layout, "tasks", "ls").stdout.splitlines()[1:]  # TASK PID STATUS
    return [line.split()[0] for line in listing if line.split()[-1:] == ["RUNNING"]]


def _kill(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``: one process, not a group (a shim or a container
    process is not our child, nor always a group leader)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _processes_naming(path: Path, *, besides: Iterable[int]) -> list[int]:
    """Processes whose command line names ``path``, except this one and ``besides``."""
    found = []
    marker = str(path).encode()
    skip = {os.getpid(), *besides}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found
