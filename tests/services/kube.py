"""A real kube-apiserver (etcd embedded) and a kubectl of the same release, for tests.

Both are built from the Go module in ``tests/kube`` (``k8s.io/kubernetes`` pinned there)
into ``<cache>/kube/bin/<hash>/``, where the hash covers that module's sources and the
build flags, so a change to them rebuilds and nothing else does. A started cluster has
the upstream Strimzi and Flink operator CRDs (``tests/third_party/crds/``, pinned by
sha256 in its ``SHA256SUMS``; ``$CHORUS_CRDS`` names another folder laid out the same way)
and Chorus' own CRDs (``charts/chorus-operator/crds/``) installed and established. The
service refuses to start, naming the file, when one of them is missing. There is no scheduler,
no controller manager and no kubelet: nothing reconciles, and a deleted namespace stays
``Terminating``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.services.base import (
    REPO,
    Service,
    ServiceError,
    free_port,
    log_tail,
    run_checked,
    spawn,
    stop_process,
    wait_until,
)

MODULE = REPO / "tests" / "kube"
BINARIES = ("chorus-apiserver", "kubectl")
FIELD_MANAGER = "chorus-tests"


THIRD_PARTY_CRDS = REPO / "tests" / "third_party" / "crds"
"""The upstream CRDs, unchanged, with their license, release and ``SHA256SUMS``."""
CHORUS_CRDS = REPO / "charts" / "chorus-operator" / "crds"
CHORUS_CRD_FILES = ("agents.chorus.dev.yaml", "tools.chorus.dev.yaml")
"""Chorus' own CRDs, as ``python -m chorus_api.crdgen`` writes them."""


def upstream_crd_dir() -> Path:
    """Where the upstream CRDs are read from: ``$CHORUS_CRDS``, else the pinned copy."""
    configured = os.environ.get("CHORUS_CRDS")
    return Path(configured) if configured else THIRD_PARTY_CRDS


def pinned_crds() -> dict[str, str]:
    """Each pinned upstream CRD file (relative path) and its sha256, from ``SHA256SUMS``."""
    sums = THIRD_PARTY_CRDS / "SHA256SUMS"
    if not sums.is_file():
        raise ServiceError(
            f"kube: {sums} is missing: it lists the upstream CRDs the apiserver needs. "
            "Restore it with `git checkout -- tests/third_party/crds`."
        )
    pinned: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            pinned[name.lstrip("*")] = digest
    return pinned


def crd_files() -> list[Path]:
    """The CRDs a started cluster serves: the upstream operators' first, then Chorus' own.

    Raises ServiceError naming every missing file and how to get it back: an apiserver
    without one of them would refuse that kind later, in some test, with no word of why.
    """
    upstream = upstream_crd_dir()
    files = [upstream / name for name in pinned_crds()]
    files += [CHORUS_CRDS / name for name in CHORUS_CRD_FILES]
    missing = [path for path in files if not path.is_file()]
    if missing:
        fixes = []
        if any(path.is_relative_to(upstream) for path in missing):
            fixes.append(
                f"unset CHORUS_CRDS, or copy the missing files into {upstream} "
                "from tests/third_party/crds"
                if upstream != THIRD_PARTY_CRDS
                else "restore them with `git checkout -- tests/third_party/crds`"
            )
        if any(path.is_relative_to(CHORUS_CRDS) for path in missing):
            fixes.append("regenerate Chorus' CRDs with `.venv/bin/python -m chorus_api.crdgen`")
        raise ServiceError(
            "kube: missing CRD file(s): "
            + ", ".join(str(path) for path in missing)
            + "; "
            + "; ".join(fixes)
        )
    return files


class KubectlError(RuntimeError):
    """kubectl exited non-zero; ``stderr`` holds the apiserver's message."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.returncode = result.returncode
        self.stderr = result.stderr
        super().__init__(
            f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr.strip()}"
        )


@dataclass(frozen=True)
class KubeCluster:
    """How tests reach the apiserver: its URL, two kubeconfigs, and the matching kubectl.

    The admin kubeconfig is ``system:masters``; the restricted one is user
    ``chorus-restricted`` with no groups, so it may do only what a test binds to it.
    """

    server: str
    admin_kubeconfig: str
    restricted_kubeconfig: str
    kubectl_path: str

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        restricted: bool = False,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl as admin (or the restricted user); raises KubectlError if ``check``."""
        kubeconfig = Path(self.restricted_kubeconfig if restricted else self.admin_kubeconfig)
        cmd = [
            self.kubectl_path,
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={kubeconfig.parent / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result)
        return result

    def apply(
        self,
        manifest: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        dry_run: bool = False,
        restricted: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Server-side applies YAML text, one object or a list of objects (strict validation).

        Raises KubectlError, whose ``stderr`` names the offending field, when refused.
        """
        if isinstance(manifest, str):
            text = manifest
        elif isinstance(manifest, Mapping):
            text = yaml.safe_dump(dict(manifest), sort_keys=False)
        else:
            text = yaml.safe_dump_all([dict(m) for m in manifest], sort_keys=False)
        args = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
        if dry_run:
            args.append("--dry-run=server")
        return self.kubectl(*args, input=text, restricted=restricted)


class KubeService(Service[KubeCluster]):
    """kube-apiserver + embedded etcd on free loopback ports, CRDs installed."""

    name = "kube"
    handle_type = KubeCluster
    ready_timeout = 120.0

    def _version(self) -> str:
        """The Kubernetes release pinned in go.mod, e.g. ``v1.36.3``."""
        found = re.search(
            r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)\s*$",
            (MODULE / "go.mod").read_text(),
            re.MULTILINE,
        )
        if not found:
            raise ServiceError(f"{MODULE / 'go.mod'}: does not require k8s.io/kubernetes")
        return found.group(1)

    def _build_command(self, out: Path) -> list[str]:
        # Without these stamps both binaries report v0.0.0-master (as Kubernetes' own
        # hack/lib/version.sh does it, for the server and for client-go).
        version = self._version()
        major, minor, _ = version.lstrip("v").split(".")
        stamps = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
        }
        ldflags = ["-s"] + [
            f"-X {pkg}.{key}={value}"
            for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for key, value in stamps.items()
        ]
        return [
            "go",
            "build",
            "-trimpath",
            f"-ldflags={' '.join(ldflags)}",
            "-o",
            f"{out}/",
            "./cmd/...",
        ]

    def bin_dir(self) -> Path:
        """Where the binaries of the current sources live (built or not)."""
        digest = hashlib.sha256(" ".join(self._build_command(Path("-"))).encode())
        sources = [MODULE / "go.mod", MODULE / "go.sum", *sorted(MODULE.rglob("*.go"))]
        for path in sources:
            digest.update(str(path.relative_to(MODULE)).encode() + b"\0" + path.read_bytes())
        return self.home / "bin" / digest.hexdigest()[:16]

    def install(self) -> None:
        """Builds both binaries unless this hash is built; drops builds of other hashes."""
        target = self.bin_dir()
        if all((target / binary).is_file() for binary in BINARIES):
            return
        if shutil.which("go") is None:
            raise ServiceError("kube: `go` is not on PATH; install Go (see go.mod for the version)")
        # Concurrent test runs may build at once: each into its own staging dir.
        staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log = self.home / f"build-{os.getpid()}.log"
        log.unlink(missing_ok=True)
        run_checked(self._build_command(staging), what="kube: go build", log=log, cwd=MODULE)
        log.unlink()
        for old in target.parent.iterdir():
            if "." not in old.name:  # a finished build of other sources
                shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another run finished the same build first
            shutil.rmtree(staging, ignore_errors=True)

    def check(self) -> None:
        crd_files()
        target = self.bin_dir()
        missing = [target / binary for binary in BINARIES if not (target / binary).is_file()]
        if missing:
            raise ServiceError(
                f"kube: missing binaries {', '.join(map(str, missing))}; build them with "
                "`.venv/bin/python -m tests.services kube prepare` (scripts/test.sh does)"
            )

    def launch(self, workdir: Path) -> tuple[subprocess.Popen[bytes], KubeCluster]:
        """Starts the apiserver, waits for /readyz, installs and establishes the CRDs."""
        bin_dir, data, log = self.bin_dir(), workdir / "data", workdir / "apiserver.log"
        port, etcd_port = free_port(), free_port()
        started = time.monotonic()
        process = spawn(
            [
                str(bin_dir / "chorus-apiserver"),
                f"--data-dir={data}",
                f"--port={port}",
                f"--etcd-port={etcd_port}",
            ],
            log=log,
        )
        cluster = KubeCluster(
            server=f"https://127.0.0.1:{port}",
            admin_kubeconfig=str(data / "admin.kubeconfig"),
            restricted_kubeconfig=str(data / "restricted.kubeconfig"),
            kubectl_path=str(bin_dir / "kubectl"),
        )
        try:
            wait_until(
                lambda: _ready(cluster),
                what="kube-apiserver /readyz",
                timeout=self.ready_timeout,
                process=process,
                log=log,
            )
            ready = time.monotonic()
            files = [arg for path in crd_files() for arg in ("-f", str(path))]
            cluster.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", *files)
            cluster.kubectl("wait", "--for=condition=established", "--timeout=60s", *files)
        except (KubectlError, subprocess.TimeoutExpired) as exc:
            stop_process(process.pid)
            raise ServiceError(f"kube: installing CRDs failed: {exc}\n{log_tail(log)}") from exc
        except BaseException:
            stop_process(process.pid)
            raise
        with log.open("a") as out:
            out.write(
                f"chorus-tests: /readyz after {ready - started:.1f}s, "
                f"CRDs established after {time.monotonic() - started:.1f}s\n"
            )
        return process, cluster


def _ready(cluster: KubeCluster) -> bool:
    if not Path(cluster.admin_kubeconfig).exists():
        return False
    result = cluster.kubectl(
        "get", "--raw=/readyz", "--request-timeout=5s", check=False, timeout=15
    )
    return result.returncode == 0 and result.stdout.strip() == "ok"
