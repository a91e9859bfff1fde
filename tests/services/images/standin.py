"""The stand-in for the official ``python:<x.y.z>-slim-<suite>`` image: Debian's own Python.

No registry is reachable, so the image the Dockerfiles start ``FROM`` is made here: debootstrap
(``--variant=minbase``, the suite the tag names, from the Debian mirror apt uses) with
``python<x.y>``, ``python3-pip`` and ``ca-certificates``, then shaped to the official image's
contract, which is all the Dockerfiles rely on:

- ``python<x.y>``, ``python3``, ``python``, ``pip`` and ``pip3`` in ``/usr/local/bin``;
- no ``EXTERNALLY-MANAGED`` marker, so ``pip install`` as root installs (into /usr/local);
- ``groupadd`` and ``useradd`` (Debian's ``passwd``, part of minbase);
- small: no documentation but the copyright files, no man pages, locales, apt lists or
  caches, and dpkg told to keep it that way, as in Debian's slim images.

It is a stand-in, and says so: its Python is Debian's release of the series (3.11.2 in
bookworm), not the tag's, and its labels name what it stands in for
(``dev.chorus.stand-in-for``) and the Python it has (``dev.chorus.python``). It is tagged
with the exact name the Dockerfiles ask for, in the images' own storage only, and kept as an
OCI archive under a hash of its recipe (this file, the suite, the mirror, the packages).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.services.base import ServiceError
from tests.services.images import HOME
from tests.services.images.buildah import Buildah, Say, run_with_progress

KEY_LABEL = "dev.chorus.stand-in.key"
FOR_LABEL = "dev.chorus.stand-in-for"
PYTHON_LABEL = "dev.chorus.python"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SLIM_DPKG = """\
# Written by Chorus' python stand-in, as in Debian's slim images: no documentation.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
PATH_ENV = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"

_REF = re.compile(r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)\.\d+-slim-([a-z]+)")


def apt_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive apt uses here for ``suite`` (not the security archive), from
    ``sources.list``, ``sources.list.d/*.list`` and ``*.sources``; Debian's CDN if none."""
    found: list[tuple[set[str], set[str], set[str], str]] = []  # types, suites, components, uri
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        for line in path.read_text().splitlines() if path.is_file() else ():
            words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3:
                found.append(({words[0]}, {words[2]}, set(words[3:]), words[1]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for block in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if not line.startswith("#") and ":" in line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            for uri in fields.get("uris", "").split():
                found.append(
                    (
                        set(fields.get("types", "").split()),
                        set(fields.get("suites", "").split()),
                        set(fields.get("components", "").split()),
                        uri,
                    )
                )
    for types, suites, components, uri in found:
        if "deb" in types and suite in suites and "main" in components and "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


@dataclass(frozen=True)
class StandIn:
    """The stand-in for one official Python image: what it is made of, and where it goes."""

    ref: str
    """As a Dockerfile names it: ``python:3.11.14-slim-bookworm``."""
    python: str
    """The series: ``3.11``."""
    suite: str
    mirror: str

    @classmethod
    def for_ref(cls, ref: str, mirror: str | None = None) -> StandIn:
        found = _REF.fullmatch(ref)
        if not found:
            raise ServiceError(
                f"images: no stand-in for {ref!r}: only python:<x.y.z>-slim-<debian suite> "
                "can be made from Debian's packages"
            )
        python, suite = found.groups()
        return cls(ref, python, suite, mirror or apt_mirror(suite))

    @property
    def packages(self) -> tuple[str, ...]:
        return (f"python{self.python}", "python3-pip", "ca-certificates")

    @property
    def storage_ref(self) -> str:
        """The fully qualified name buildah resolves the Dockerfile's short name to."""
        return f"docker.io/library/{self.ref.split('/')[-1]}"

    @property
    def key(self) -> str:
        digest = hashlib.sha256(Path(__file__).read_bytes())
        digest.update(json.dumps([self.ref, self.suite, self.mirror, self.packages]).encode())
        return digest.hexdigest()[:16]

    @property
    def archive(self) -> Path:
        return HOME / "base" / f"{self.ref.replace(':', '-')}-{self.key}.oci.tar"


def ensure(standin: StandIn, buildah: Buildah, say: Say) -> str:
    """Puts the stand-in into the storage under its exact name: ``cached`` when there,
    ``loaded`` from its archive, else ``made`` (about a minute: debootstrap)."""
    labels = buildah.labels(standin.storage_ref)
    if labels is not None and labels.get(KEY_LABEL) == standin.key:
        return "cached"
    if standin.archive.is_file():
        buildah.load(standin.archive, standin.storage_ref)
        return "loaded"
    make(standin, buildah, say)
    for old in standin.archive.parent.glob(f"{standin.ref.replace(':', '-')}-*.oci.tar"):
        if old != standin.archive:
            old.unlink(missing_ok=True)
    return "made"


def make(standin: StandIn, buildah: Buildah, say: Say) -> None:
    """debootstrap, shape, import into the storage as ``standin.storage_ref``, export."""
    staging = HOME / "base" / f"{standin.key}.partial-{os.getpid()}"
    _remove(staging)
    staging.mkdir(parents=True)
    rootfs = staging / "rootfs"
    say(
        f"images: making the stand-in for {standin.ref}: debootstrap {standin.suite} "
        f"(minbase, {' '.join(standin.packages)}) from {standin.mirror}"
    )
    started = time.monotonic()
    try:
        run_with_progress(
            # Its own mount namespace: the /proc and /sys it mounts in the target go with it,
            # even when it is stopped half-way (and never get in the way of removing staging).
            ["nice", "-n", "19", "unshare", "--mount", "--propagation=private", "debootstrap",
             "--variant=minbase", f"--include={','.join(standin.packages)}",
             standin.suite, str(rootfs), standin.mirror],
            what="images: debootstrap",
            log=staging / "debootstrap.log",
            say=say,
            env=dict(os.environ),
            timeout=1200,
            where=_last_debootstrap_step,
        )  # fmt: skip
        python_version = shape(rootfs, standin.python)
        say(f"  debootstrap and shaping: {time.monotonic() - started:.0f}s")
        tarball = staging / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
            check=True,
            capture_output=True,
        )
        name = f"chorus-stand-in-{uuid.uuid4().hex[:12]}"
        buildah("from", f"--name={name}", "scratch")
        try:
            buildah("add", "--quiet", name, str(tarball), "/", timeout=600)
            buildah(
                "config",
                f"--env=PATH={PATH_ENV}",
                "--env=LANG=C.UTF-8",
                '--cmd=["python3"]',
                "--label=org.opencontainers.image.title=python stand-in",
                "--label=org.opencontainers.image.description=A stand-in for "
                f"{standin.ref}, made from Debian {standin.suite} packages (Python "
                f"{python_version}) for Chorus' tests; not the official image",
                f"--label={FOR_LABEL}={standin.ref}",
                f"--label={PYTHON_LABEL}={python_version}",
                f"--label={KEY_LABEL}={standin.key}",
                name,
            )
            buildah("commit", "--quiet", "--rm", name, standin.storage_ref, timeout=600)
        except BaseException:
            buildah("rm", name, check=False)
            raise
        buildah.export(standin.storage_ref, standin.archive)
    finally:
        _remove(staging)


def shape(rootfs: Path, python: str) -> str:
    """Makes a debootstrapped tree meet the official image's contract (module docstring);
    returns its Python's version (``3.11.2``)."""
    interpreter = rootfs / "usr" / "bin" / f"python{python}"
    default = rootfs / "usr" / "bin" / "python3"
    if not interpreter.is_file() or not (
        default.is_symlink() and os.readlink(default) == f"python{python}"
    ):
        raise ServiceError(
            f"images: this Debian release's python3 is not python{python}: pip would not be "
            "that Python's, so the stand-in cannot meet the official image's contract"
        )
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*",
        "var/cache/debconf/*-old",
        "var/lib/dpkg/*-old",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/locale/*",
        "usr/share/lintian/*",
        "dev/*",
        f"usr/lib/python{python}/EXTERNALLY-MANAGED",
    ):
        for path in rootfs.glob(pattern):
            _remove(path)
    for path in sorted((rootfs / "usr" / "share" / "doc").rglob("*"), reverse=True):
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.name != "copyright":
            path.unlink()
    for kept in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        (rootfs / kept).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "dpkg" / "dpkg.cfg.d" / "chorus-stand-in-slim").write_text(SLIM_DPKG)
    # The files a runtime mounts over: present and empty, so a RUN step's layer never
    # records them (buildah 1.28 would add them, empty, to the first layer that lacks them).
    for name in ("hostname", "resolv.conf"):
        (rootfs / "etc" / name).write_text("")
    (rootfs / "etc" / "hosts").write_text(HOSTS)
    local = rootfs / "usr" / "local" / "bin"
    links = {
        f"python{python}": f"/usr/bin/python{python}",
        "python3": f"python{python}",
        "python": "python3",
        "pip3": "/usr/bin/pip3",
        "pip": "pip3",
    }
    for name, target in links.items():
        (local / name).unlink(missing_ok=True)
        (local / name).symlink_to(target)
    return _package_version(rootfs, f"python{python}").split("-")[0].split(":")[-1]


def _package_version(rootfs: Path, package: str) -> str:
    status = (rootfs / "var" / "lib" / "dpkg" / "status").read_text()
    found = re.search(rf"^Package: {re.escape(package)}\n(?:.+\n)*?Version: (\S+)$", status, re.M)
    if not found:
        raise ServiceError(f"images: debootstrap did not install {package}")
    return found.group(1)


def _last_debootstrap_step(log_text: str) -> str:
    lines = [line for line in log_text.splitlines() if line.startswith("I: ")]
    return lines[-1][3:90] if lines else "starting"


def _remove(path: Path) -> None:
    """Removes a file or a tree, refusing one with anything mounted in it."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        resolved = str(path.resolve())
        with open("/proc/self/mountinfo") as mounts:
            points = [line.split()[4] for line in mounts]
        inside = [p for p in points if p == resolved or p.startswith(resolved + "/")]
        if inside:
            raise ServiceError(f"images: not removing {path}: {', '.join(inside)} mounted in it")
        shutil.rmtree(path)
    else:
        path.unlink()
