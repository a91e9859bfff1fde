"""The cluster's binaries and images: built once per version of their sources, with progress.

The binaries (:data:`TARGETS`) are built from ``tests/cluster`` (and its CoreDNS module)
into ``<cache>/cluster/bin/<hash>/``, where the hash covers both modules' sources and the
build commands, as :mod:`tests.services.kube` does for the apiserver. Builds run at
``nice 19``: the machine has two cores and other test runs share them.

The images (pause, the probe, CoreDNS) are ``FROM scratch`` images of those binaries,
built by buildah from the Dockerfiles in ``tests/cluster/images`` into OCI archives under
``<cache>/cluster/images/<hash>/``; buildah's storage is a temporary directory there,
never ``/var/lib/containers``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.base import REPO, ServiceError, run_checked
from tests.services.cluster import HOME
from tests.services.gobuild import run_go

MODULE = REPO / "tests" / "cluster"
IMAGES = MODULE / "images"
REGISTRY = "chorus.local"
"""The images' registry part: no registry is ever asked, every pod says ``Never`` pull."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """One binary: its ``go build`` package, in which module, and whether it goes in an image
    (then it is static: ``CGO_ENABLED=0``)."""

    name: str
    package: str
    module: Path = MODULE
    static: bool = False
    stamped: bool = True
    """Kubernetes' version stamps, as its hack/lib/version.sh sets them."""


TARGETS = (
    Target("kube-apiserver", "./cmd/kube-apiserver"),
    Target("kube-controller-manager", "./cmd/kube-controller-manager"),
    Target("kube-scheduler", "./cmd/kube-scheduler"),
    Target("kube-proxy", "./cmd/kube-proxy"),
    Target("kubelet", "./cmd/kubelet"),
    Target("chorus-etcd", "./cmd/chorus-etcd", stamped=False),
    Target("chorus-pki", "./cmd/chorus-pki", stamped=False),
    Target("pause", "./cmd/pause", static=True, stamped=False),
    Target("chorus-probe", "./cmd/chorus-probe", static=True, stamped=False),
    Target("coredns", ".", module=MODULE / "coredns", static=True, stamped=False),
)

IMAGE_NAMES = ("pause", "chorus-probe", "coredns")
"""Each image is ``<name>.Dockerfile`` in :data:`IMAGES`, made of the binary of that name."""


def kubernetes_version() -> str:
    """The Kubernetes release pinned in ``tests/cluster/go.mod``, e.g. ``v1.36.3``."""
    found = re.search(
        r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)\s*$",
        (MODULE / "go.mod").read_text(),
        re.MULTILINE,
    )
    if not found:
        raise ServiceError(f"{MODULE / 'go.mod'}: does not require k8s.io/kubernetes")
    return found.group(1)


def build_command(target: Target, out: Path) -> list[str]:
    ldflags = ["-s"]
    if target.stamped:
        version = kubernetes_version()
        major, minor, _ = version.lstrip("v").split(".")
        stamps = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
        }
        ldflags += [
            f"-X {pkg}.{key}={value}"
            for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for key, value in stamps.items()
        ]
    return [
        "nice",
        "-n",
        "19",
        "go",
        "build",
        "-v",
        "-trimpath",
        f"-ldflags={' '.join(ldflags)}",
        "-o",
        str(out / target.name),
        target.package,
    ]


def _sources_digest() -> hashlib._Hash:
    digest = hashlib.sha256()
    for target in TARGETS:
        # Everything but the checkout's own path: a fresh clone must find the same build.
        command = build_command(target, Path("-"))
        module = target.module.relative_to(MODULE)
        digest.update(f"{target.name} {target.package} {module} {target.static} {command}".encode())
    sources = sorted(
        path
        for path in MODULE.rglob("*")
        if path.is_file() and (path.suffix == ".go" or path.name in {"go.mod", "go.sum"})
    )
    for path in sources:
        digest.update(str(path.relative_to(MODULE)).encode() + b"\0" + path.read_bytes())
    return digest


def bin_dir() -> Path:
    """Where the binaries of the current sources live (built or not)."""
    return HOME / "bin" / _sources_digest().hexdigest()[:16]


def images_dir() -> Path:
    """Where the images of the current binaries and Dockerfiles live (built or not)."""
    digest = _sources_digest()
    for dockerfile in sorted(IMAGES.glob("*.Dockerfile")):
        digest.update(dockerfile.name.encode() + b"\0" + dockerfile.read_bytes())
    return HOME / "images" / digest.hexdigest()[:16]


def image_tag() -> str:
    """The tag of every image of this build: its hash, so a changed binary is a new image."""
    return images_dir().name


def image_ref(name: str) -> str:
    return f"{REGISTRY}/{name}:{image_tag()}"


@dataclass
class BuildReport:
    """Seconds per binary and per image that this call built (empty when all was cached)."""

    binaries: dict[str, float] = field(default_factory=dict)
    images: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """``kubelet 35s, ..., image coredns 3s``, or that nothing was built."""
        built = [f"{name} {s:.0f}s" for name, s in self.binaries.items()]
        built += [f"image {name} {s:.0f}s" for name, s in self.images.items()]
        return ", ".join(built) or f"nothing to build: {bin_dir()} and {images_dir()} are built"

    @property
    def seconds(self) -> float:
        return sum(self.binaries.values()) + sum(self.images.values())


def install(say: Say = print) -> BuildReport:
    """Builds what is missing: the binaries, then the images; drops builds of other hashes."""
    report = BuildReport()
    report.binaries = _build_binaries(say)
    report.images = _build_images(say)
    return report


def check() -> None:
    """Raises ServiceError naming what is missing, unless every binary and image is built."""
    missing = [bin_dir() / t.name for t in TARGETS if not (bin_dir() / t.name).is_file()]
    missing += [images_dir() / f"{n}.tar" for n in IMAGE_NAMES]
    missing = [path for path in missing if not path.is_file()]
    if missing:
        raise ServiceError(
            f"cluster: missing {', '.join(map(str, missing))}; build them with "
            "`python -m tests.services.cluster build`"
        )


def _build_binaries(say: Say) -> dict[str, float]:
    target_dir = bin_dir()
    if all((target_dir / t.name).is_file() for t in TARGETS):
        return {}
    if shutil.which("go") is None:
        raise ServiceError("cluster: `go` is not on PATH; install Go (see tests/cluster/go.mod)")
    staging = target_dir.with_name(f"{target_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log = HOME / f"build-{os.getpid()}.log"
    log.unlink(missing_ok=True)
    times: dict[str, float] = {}
    say(f"cluster: building {len(TARGETS)} binaries into {target_dir} (log: {log})")
    for index, target in enumerate(TARGETS, 1):
        env = {**os.environ, **({"CGO_ENABLED": "0"} if target.static else {})}
        started = time.monotonic()
        run_go(
            build_command(target, staging),
            what=f"cluster: go build [{index}/{len(TARGETS)}] {target.name}",
            cwd=target.module,
            env=env,
            log=log,
            say=say,
        )
        times[target.name] = time.monotonic() - started
        say(f"  [{index}/{len(TARGETS)}] {target.name}: {times[target.name]:.0f}s")
    log.unlink()
    for old in target_dir.parent.iterdir():
        if "." not in old.name:  # a finished build of other sources
            shutil.rmtree(old, ignore_errors=True)
    try:
        staging.rename(target_dir)
    except OSError:  # another run finished the same build first
        shutil.rmtree(staging, ignore_errors=True)
    return times


def _build_images(say: Say) -> dict[str, float]:
    target_dir = images_dir()
    if all((target_dir / f"{name}.tar").is_file() for name in IMAGE_NAMES):
        return {}
    if shutil.which("buildah") is None:
        raise ServiceError("cluster: needs buildah (apt-get install buildah)")
    binaries = bin_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    storage = HOME / f"buildah-{os.getpid()}"
    log = HOME / f"images-{os.getpid()}.log"
    buildah = [
        "buildah",
        f"--root={storage / 'root'}",
        f"--runroot={storage / 'runroot'}",
        "--storage-driver=vfs",
    ]
    # buildah's CNI lock would go to /etc/cni/net.d: its containers.conf moves it. Its blob
    # info cache goes to /var/lib/containers/cache whatever the flags: removed below.
    containers_conf = storage / "containers.conf"
    (storage / "tmp").mkdir(parents=True, exist_ok=True)
    containers_conf.write_text(f'[network]\nnetwork_config_dir = "{storage / "cni"}"\n')
    env = {
        **os.environ,
        "TMPDIR": str(storage / "tmp"),
        "BUILDAH_ISOLATION": "chroot",
        "CONTAINERS_CONF": str(containers_conf),
    }
    blob_cache_root = Path("/var/lib/containers")
    blob_cache_was_there = blob_cache_root.exists()
    times: dict[str, float] = {}
    try:
        for name in IMAGE_NAMES:
            started = time.monotonic()
            ref = image_ref(name)
            archive = target_dir / f"{name}.tar"
            partial = archive.with_suffix(f".partial-{os.getpid()}")
            run_checked(
                [
                    *buildah,
                    "build",
                    "--quiet",
                    f"--file={IMAGES / f'{name}.Dockerfile'}",
                    f"--tag={ref}",
                    str(binaries),
                ],
                what=f"cluster: buildah build {ref}",
                log=log,
                env=env,
            )
            partial.unlink(missing_ok=True)
            run_checked(
                [*buildah, "push", "--quiet", ref, f"oci-archive:{partial}:{ref}"],
                what=f"cluster: buildah push {ref}",
                log=log,
                env=env,
            )
            partial.rename(archive)
            times[name] = time.monotonic() - started
            say(f"  image {ref}: {times[name]:.1f}s")
    finally:
        # vfs layers are plain directories: nothing is mounted, so removing them is enough.
        shutil.rmtree(storage, ignore_errors=True)
        if not blob_cache_was_there:
            shutil.rmtree(blob_cache_root, ignore_errors=True)
    log.unlink(missing_ok=True)
    for old in target_dir.parent.iterdir():
        if old != target_dir:
            shutil.rmtree(old, ignore_errors=True)
    return times
