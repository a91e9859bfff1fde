"""helm v3, built from its Go module with ``go install`` and cached, for the chart tests.

The binary lands in ``<cache>/tools/helm-<version>/helm`` (``GOBIN``), so a run installs
it once and later runs reuse it; changing :data:`HELM_VERSION` installs the new one beside
it. The module comes from the Go module proxy (``go env GOPROXY``), like the kube build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.services.base import CACHE, ServiceError, run_checked

HELM_VERSION = "v3.21.4"
HELM_MODULE = "helm.sh/helm/v3"
# The Kubernetes release of the k8s.io modules that helm release builds against (its go.mod).
# helm's Makefile stamps it in, and `helm template`/`helm lint` assume a cluster of that
# version; unstamped they assume v1.20 and refuse charts with a newer kubeVersion.
HELM_KUBE_VERSION = (1, 36)


@dataclass(frozen=True)
class Helm:
    """A helm binary; every command runs without a kubeconfig unless one is given."""

    path: str
    version: str

    def run(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Runs helm; raises HelmError with its stderr if ``check`` and it exits non-zero."""
        # A private HOME-like tree: helm writes its config, cache and data there.
        home = Path(self.path).parent / "home"
        env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        result = subprocess.run(
            [self.path, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        if check and result.returncode != 0:
            raise HelmError(args, result)
        return result


class HelmError(RuntimeError):
    """helm exited non-zero; ``output`` holds what it printed (stdout and stderr)."""

    def __init__(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        self.returncode = result.returncode
        self.output = f"{result.stdout}\n{result.stderr}".strip()
        super().__init__(f"helm {' '.join(args)} failed ({result.returncode}):\n{self.output}")


def ldflags(version: str) -> str:
    """What helm's Makefile stamps into a release build: its version and Kubernetes'."""
    major, minor = HELM_KUBE_VERSION
    stamps = {
        "internal/version.version": version,
        "pkg/lint/rules.k8sVersionMajor": major,
        "pkg/lint/rules.k8sVersionMinor": minor,
        "pkg/chartutil.k8sVersionMajor": major,
        "pkg/chartutil.k8sVersionMinor": minor,
    }
    return " ".join(["-s", "-w"] + [f"-X {HELM_MODULE}/{k}={v}" for k, v in stamps.items()])


def helm_dir(version: str = HELM_VERSION) -> Path:
    return CACHE / "tools" / f"helm-{version}"


def check_helm(version: str = HELM_VERSION) -> Helm:
    """The installed helm ``version``; raises ServiceError naming the binary and the fix
    unless it is there. Never installs."""
    binary = helm_dir(version) / "helm"
    if not binary.is_file():
        raise ServiceError(
            f"helm: {binary} is missing; install it with "
            "`.venv/bin/python -m tests.services helm prepare` (scripts/test.sh does)"
        )
    return Helm(str(binary), version)


def install_helm(version: str = HELM_VERSION) -> Helm:
    """The cached helm of ``version``, installed with ``go install`` first if missing.

    Raises ServiceError (ending with the build log) when Go is missing or the build fails.
    """
    target = helm_dir(version)
    binary = target / "helm"
    if binary.is_file():
        return Helm(str(binary), version)
    if shutil.which("go") is None:
        raise ServiceError("helm: `go` is not on PATH; install Go to build helm")
    # Concurrent runs may install at once: each into its own staging dir, renamed at the end.
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log = target.parent / f"helm-build-{os.getpid()}.log"
    log.unlink(missing_ok=True)
    run_checked(
        [
            "go",
            "install",
            "-trimpath",
            f"-ldflags={ldflags(version)}",
            f"{HELM_MODULE}/cmd/helm@{version}",
        ],
        what=f"helm: go install {version}",
        log=log,
        # Outside any module, so go.mod files around the working directory play no part.
        cwd=target.parent,
        env={**os.environ, "GOBIN": str(staging), "GOFLAGS": "-buildvcs=false"},
    )
    log.unlink()
    try:
        staging.rename(target)
    except OSError:  # another run finished the same install first
        shutil.rmtree(staging, ignore_errors=True)
    return Helm(str(binary), version)
