"""What the cluster changes on the machine, and how each change is undone.

A one-node cluster touches the host in a few places no directory can hold: a bridge, iptables
rules (kube-proxy's Services, the CNI bridge plugin's masquerading, the kubelet's canaries),
sysctls (the CNI plugin turns on forwarding; the kubelet sets ``kernel.panic``,
``kernel.panic_on_oops``, ``vm.overcommit_memory`` and others when it starts), mounts (pod
network namespaces, overlay root filesystems), cgroups (containerd puts the containers
of the ``k8s.io`` namespace under ``/k8s.io`` in every hierarchy; a kubelet with QoS
cgroups makes ``/kubepods``) and a few fixed paths (containerd 1.6 puts its shims' sockets
in ``/run/containerd/s``, the kubelet its log links in ``/var/log/containers``). Before
starting, :func:`snapshot` records the sysctls, iptables rules, top-level cgroups and which
system paths exist; :func:`restore` puts back the sysctls and removes every iptables rule,
chain, cgroup and emptied system path that was not there before, and :func:`unmount_under`
and :func:`delete_bridge` the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.services.base import ServiceError
from tests.services.cluster import BRIDGE, NODE_IP, POD_CIDR

SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    # The kubelet sets these at start (protectKernelDefaults: false).
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    # kube-proxy sets these unless its conntrack settings are zero (ours are).
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)
IPTABLES = ("iptables", "ip6tables")
BASE_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
CGROUPS = Path("/sys/fs/cgroup")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
"""The kubelet's links to the container logs (a constant in the kubelet)."""
SYSTEM_PATHS = tuple(
    map(
        Path,
        (
            "/run/containerd",
            "/var/lib/containerd",
            "/etc/cni",
            "/opt/cni",
            "/opt/containerd",
            "/var/lib/cni",
            "/var/lib/kubelet",
            "/var/log/pods",
            str(CONTAINER_LOG_LINKS),
            "/var/lib/containers",
            "/run/netns",
            "/etc/kubernetes",
        ),
    )
)
"""The runtime's and the kubelet's default places. Those that were absent before are
watched: at the end, the sockets and emptied directories the run left there are removed,
and anything else is reported. Expected: containerd 1.6 puts its shims' sockets in
``/run/containerd/s`` whatever its state dir, libcni its results cache in ``/var/lib/cni``,
the kubelet its device plugins' socket in ``/var/lib/kubelet/device-plugins`` whatever its
root dir, and its links in :data:`CONTAINER_LOG_LINKS` (see :func:`remove_log_links`)."""

REQUIRED = {
    "containerd": "apt-get install containerd",
    "containerd-shim-runc-v2": "apt-get install containerd",
    "ctr": "apt-get install containerd",
    "runc": "apt-get install runc; crun will not do on a cgroups v1 hybrid",
    "buildah": "apt-get install buildah",
    "iptables": "apt-get install iptables",
    "ip": "apt-get install iproute2",
    "go": "https://go.dev/doc/install",
}
CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")


def preflight() -> None:
    """Raises ServiceError with every missing prerequisite and how to get it."""
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root: the cluster makes a bridge, iptables rules and containers")
    problems += [
        f"missing {tool} ({fix})" for tool, fix in REQUIRED.items() if shutil.which(tool) is None
    ]
    problems += [
        f"missing CNI plugin {CNI_BIN / p} (apt-get install containernetworking-plugins)"
        for p in CNI_PLUGINS
        if not (CNI_BIN / p).is_file()
    ]
    if problems:
        raise ServiceError("cluster: " + "; ".join(problems))


@dataclass
class HostSnapshot:
    """The host as it was before the cluster: restored from this at the end."""

    sysctls: dict[str, str] = field(default_factory=dict)
    iptables: dict[str, str] = field(default_factory=dict)
    """``iptables-save`` and ``ip6tables-save`` output."""
    absent: list[str] = field(default_factory=list)
    """Which of :data:`SYSTEM_PATHS` did not exist."""
    cgroups: list[str] = field(default_factory=list)
    """The cgroups directly under each hierarchy's root (``memory/system.slice``...)."""
    nft_tables: list[str] = field(default_factory=list)
    """``nft list tables`` (``table ip filter``...), when nft is installed: iptables-nft
    makes a table on first use, and a table no rule is left in is removed at the end."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> HostSnapshot:
        return cls(**json.loads(path.read_text()))


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def snapshot() -> HostSnapshot:
    taken = HostSnapshot()
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            taken.sysctls[name] = _sysctl_path(name).read_text().strip()
    for tool in IPTABLES:
        if shutil.which(f"{tool}-save"):
            taken.iptables[tool] = _save(tool)
    taken.absent = [str(path) for path in SYSTEM_PATHS if not path.exists()]
    taken.cgroups = [str(path) for path in _top_cgroups()]
    taken.nft_tables = _nft_tables()
    return taken


def _nft_tables() -> list[str]:
    if shutil.which("nft") is None:
        return []
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return [line.strip() for line in listed.stdout.splitlines() if line.startswith("table ")]


def _nft_table_is_empty(table: str) -> bool:
    """No rule and no chain but the base chains iptables-nft makes (hook and policy only)."""
    listed = subprocess.run(["nft", "list", *table.split()], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        words = line.split()
        if not words or words[0] in {"table", "}", "type"}:
            continue
        if words[0] == "chain" and words[1] in BASE_CHAINS:
            continue
        return False
    return listed.returncode == 0


def _top_cgroups() -> list[Path]:
    """The cgroups one level below each hierarchy (v1 controllers and the unified one)."""
    unified = (CGROUPS / "cgroup.procs").exists()  # cgroup v2 alone, mounted at the root
    hierarchies = [CGROUPS] if unified else [p for p in CGROUPS.iterdir() if p.is_dir()]
    found: list[Path] = []
    for hierarchy in hierarchies:
        with contextlib.suppress(OSError):
            found += [child for child in hierarchy.iterdir() if child.is_dir()]
    return sorted(found)


def set_sysctl(name: str, value: str) -> None:
    _sysctl_path(name).write_text(value)


def _save(tool: str) -> str:
    result = subprocess.run([f"{tool}-save"], capture_output=True, text=True, check=False)
    return result.stdout


def saved_rules(save: str) -> dict[str, tuple[set[str], list[str]]]:
    """Per table: its chains, and its rules (``-A`` lines) in order."""
    tables: dict[str, tuple[set[str], list[str]]] = {}
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables[table] = (set(), [])
        elif line.startswith(":") and table:
            tables[table][0].add(line[1:].split()[0])
        elif line.startswith("-A ") and table:
            tables[table][1].append(line)
    return tables


def restore(taken: HostSnapshot) -> tuple[list[str], list[str]]:
    """Removes the iptables rules and chains added since ``taken``, puts the sysctls back,
    and removes the emptied directories left in the system paths that were absent.

    Returns what it did, one line per change, and what is left (a system path that holds
    files now): the teardown report."""
    done: list[str] = []
    for tool, before_save in taken.iptables.items():
        before = saved_rules(before_save)
        after = saved_rules(_save(tool))
        for table, (chains, rules) in after.items():
            old_chains, old_rules = before.get(table, (set(), []))
            added_rules = [rule for rule in rules if rule not in set(old_rules)]
            added_chains = chains - old_chains
            for rule in reversed(added_rules):
                args = shlex.split(rule)[1:]
                result = subprocess.run(
                    [tool, "-w", "-t", table, "-D", *args], capture_output=True, text=True
                )
                if result.returncode == 0:
                    done.append(f"{tool} -t {table}: removed {rule}")
            # A table that is new has new base chains too: they go with the table (below).
            added_chains -= BASE_CHAINS
            for chain in sorted(added_chains):
                subprocess.run([tool, "-w", "-t", table, "-F", chain], capture_output=True)
            for chain in sorted(added_chains):
                result = subprocess.run(
                    [tool, "-w", "-t", table, "-X", chain], capture_output=True, text=True
                )
                if result.returncode == 0:
                    done.append(f"{tool} -t {table}: removed chain {chain}")
    for table in _nft_tables():
        if table not in taken.nft_tables and _nft_table_is_empty(table):
            deleted = subprocess.run(["nft", "delete", *table.split()], capture_output=True)
            if deleted.returncode == 0:
                done.append(f"removed the empty nftables {table} (made by iptables-nft)")
    for name, value in taken.sysctls.items():
        with contextlib.suppress(OSError):
            if _sysctl_path(name).read_text().strip() != value:
                set_sysctl(name, value)
                done.append(f"sysctl {name.replace('/', '.')} back to {value}")
    left: list[str] = []
    cgroups_before = set(map(Path, taken.cgroups))
    for cgroup in (path for path in _top_cgroups() if path not in cgroups_before):
        # Deepest first; a cgroup with a process in it refuses (and is reported).
        for directory, _, _ in sorted(os.walk(cgroup), key=lambda entry: -len(entry[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        if cgroup.exists():
            left.append(f"cgroup {cgroup}: still holds processes")
        else:
            done.append(f"removed cgroup {cgroup}")
    for path in map(Path, taken.absent):
        if not path.exists():
            continue
        done += _remove_sockets_and_empty_dirs(path)
        if path.exists():
            files = [str(f) for f in path.rglob("*") if not f.is_dir()]
            left.append(f"{path}: {len(files)} file(s) left, e.g. {files[:3]}")
        else:
            done.append(f"removed {path} (made during the run, empty at the end)")
    return done, left


def _remove_sockets_and_empty_dirs(root: Path) -> list[str]:
    """Removes the sockets below ``root`` (their servers are gone), then every directory
    that is empty, deepest first; returns the sockets removed."""
    removed = []
    for directory, _, files in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        for name in files:
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
                    removed.append(f"removed socket {path}")
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only when empty
    return removed


def create_bridge() -> None:
    """Makes :data:`BRIDGE` with :data:`NODE_IP`; refuses when it exists (another cluster,
    or one that was not torn down: ``python -m tests.services.cluster clean``)."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        raise ServiceError(
            f"cluster: bridge {BRIDGE} exists: another cluster runs, or one was not torn "
            "down (`python -m tests.services.cluster clean` removes what is left)"
        )
    prefix = POD_CIDR.split("/")[1]
    for cmd in (
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"cluster: {' '.join(cmd)}: {result.stderr.strip()}")


def delete_bridge() -> bool:
    """Removes :data:`BRIDGE` (and so every veth still on it); whether it was there."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        return False
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
    return True


def unmount_under(root: Path) -> list[str]:
    """Unmounts every mount point below ``root`` (pod network namespaces, overlay root
    filesystems, shm), deepest first."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                mounts.append(point)
    done = []
    for point in sorted(set(mounts), key=len, reverse=True):
        result = subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if result.returncode == 0:
            done.append(f"unmounted {point}")
    return done


def remove_log_links(root: Path) -> list[str]:
    """Removes the kubelet's links in :data:`CONTAINER_LOG_LINKS` that point below ``root``."""
    done: list[str] = []
    if not CONTAINER_LOG_LINKS.is_dir():
        return done
    prefix = str(root.resolve()) + "/"
    for link in CONTAINER_LOG_LINKS.iterdir():
        if link.is_symlink() and os.readlink(link).startswith(prefix):
            link.unlink()
            done.append(f"removed {link}")
    return done
