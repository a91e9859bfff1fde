"""agents/Dockerfile and operator/Dockerfile built by buildah, each keyed by a hash of its inputs.

The references are the ones the repository already defines: the agent's is the operator's
default agent image (``chorus_operator.settings.Settings.agent_image``), the operator's is
the chart's ``image.repository`` and ``image.tag`` (else its ``appVersion``). Each build runs
``buildah bud --pull=never --layers`` at ``nice 19`` on the Dockerfile as it is, from the
repository root (filtered by ``.dockerignore``), after the stand-ins of its ``FROM`` images
are in place (:mod:`.standin`); its build steps reach PyPI (``pip install uv``, ``uv sync``)
on the host's network. Every 30 s it says which step it is at.

The key of an image hashes its stand-in's key, the Dockerfile, ``.dockerignore``, the build
flags, the reference and every file its ``COPY`` instructions take from the context. The
image carries it as the label ``dev.chorus.inputs`` (the Dockerfile is not changed for it),
and its OCI archive is ``<cache>/images/archives/<name>-<version>-<key>.oci.tar``. A warm
run finds both and builds nothing; a changed source builds again, from buildah's layer cache
up to the first step it changes (the dependencies stay cached while ``uv.lock`` does).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.services.base import REPO, ServiceError
from tests.services.images import HOME
from tests.services.images.buildah import Buildah, Say, require_tools
from tests.services.images.standin import StandIn, ensure

INPUTS_LABEL = "dev.chorus.inputs"
BUD_FLAGS = ("--pull=never", "--layers", "--network=host")
"""``--pull=never``: the stand-ins are the only bases there are. ``--network=host``: the build
steps install from PyPI."""
CHART = REPO / "charts" / "chorus-operator"


@dataclass(frozen=True)
class Image:
    """One image the repository builds: its Dockerfile and its reference."""

    name: str
    dockerfile: Path
    ref: str

    @property
    def slug(self) -> str:
        """``chorus-agent-0.1.0``: the reference's last part, for file names."""
        return self.ref.rsplit("/", 1)[-1].replace(":", "-")


def agent_ref() -> str:
    """The operator's default agent image: what every Agent without ``spec.image`` runs."""
    from chorus_operator.settings import Settings

    default = next(f.default for f in dataclasses.fields(Settings) if f.name == "agent_image")
    return str(default)


def operator_ref() -> str:
    """The image the chart deploys: ``image.repository`` and ``image.tag`` or ``appVersion``."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}"


def images() -> tuple[Image, ...]:
    return (
        Image("agent", REPO / "agents" / "Dockerfile", agent_ref()),
        Image("operator", REPO / "operator" / "Dockerfile", operator_ref()),
    )


# --- what a Dockerfile takes ------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` of each instruction: comments dropped, continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        found.append((keyword.upper(), " ".join(args.split())))
    return found


def base_refs(dockerfile: Path) -> list[str]:
    """The images its stages start from (the global ``ARG`` defaults filled in), not the
    stages it names itself, nor ``scratch``."""
    variables: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    for keyword, args in instructions(dockerfile):
        if keyword == "ARG" and "=" in args and not bases and not stages:
            name, _, value = args.partition("=")
            variables[name] = value
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            ref = re.sub(
                r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m.group(1) or m.group(2)], words[0]
            )
            if ref not in stages and ref != "scratch" and ref not in bases:
                bases.append(ref)
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    return bases


def copied_sources(dockerfile: Path) -> list[str]:
    """What its ``COPY`` and ``ADD`` instructions take from the build context."""
    sources: list[str] = []
    for keyword, args in instructions(dockerfile):
        if keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def ignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if any(p.startswith("!") for p in patterns):
        raise ServiceError("images: .dockerignore exceptions (`!...`) are not supported here")
    return patterns


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` leaves ``relative`` (or a folder above it) out."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern)
        or (pattern.startswith("**/") and fnmatch.fnmatch(parts[i], pattern[3:]))
        for pattern in patterns
        for i, prefix in enumerate(prefixes)
    )


def input_files(dockerfile: Path) -> list[Path]:
    """Every file of the context that the Dockerfile copies, sorted."""
    patterns = ignore_patterns()

    def walk(path: Path) -> Iterator[Path]:
        if ignored(path.relative_to(REPO).as_posix(), patterns):
            return
        if path.is_dir():
            for child in path.iterdir():
                yield from walk(child)
        elif path.exists():
            yield path

    files: set[Path] = set()
    for source in copied_sources(dockerfile):
        matches = sorted(REPO.glob(source))
        if not matches:
            raise ServiceError(f"images: {dockerfile}: COPY {source}: not in {REPO}")
        for match in matches:
            files.update(walk(match))
    return sorted(files)


def stand_ins(image: Image) -> list[StandIn]:
    return [StandIn.for_ref(ref) for ref in base_refs(image.dockerfile)]


def key(image: Image) -> str:
    """The hash of everything the image is built from (the module's docstring)."""
    digest = hashlib.sha256()
    for part in (
        *(standin.key for standin in stand_ins(image)),
        image.ref,
        *BUD_FLAGS,
        image.dockerfile.read_text(),
        (REPO / ".dockerignore").read_text() if (REPO / ".dockerignore").is_file() else "",
    ):
        digest.update(part.encode() + b"\0")
    for path in input_files(image.dockerfile):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def archive(image: Image, image_key: str | None = None) -> Path:
    """Where the OCI archive of the image's current inputs goes (``ctr images import`` it)."""
    return HOME / "archives" / f"{image.slug}-{image_key or key(image)}.oci.tar"


# --- building ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """What one step of :func:`install` did, and in how many seconds."""

    what: str
    state: str
    """``cached``, ``loaded`` (from its archive), ``exported``, ``built`` or ``made``."""
    seconds: float


@dataclass(frozen=True)
class Built:
    """The images, built and in the storage: what the tests run."""

    buildah: Buildah
    stand_ins: tuple[StandIn, ...]
    images: dict[str, Image]
    archives: dict[str, Path]
    keys: dict[str, str]


def install(say: Say = print) -> list[Row]:
    """Makes the stand-ins and builds the images unless their hashes are built, loads into
    the storage what only an archive holds, then drops what older builds left."""
    require_tools()
    buildah = Buildah()
    buildah.setup()
    rows: list[Row] = []
    made: dict[str, StandIn] = {}
    for image in images():
        for standin in stand_ins(image):
            if standin.ref not in made:
                started = time.monotonic()
                state = ensure(standin, buildah, say)
                made[standin.ref] = standin
                rows.append(Row(f"{standin.ref} (stand-in)", state, time.monotonic() - started))
    for image in images():
        started = time.monotonic()
        state = _ensure_image(image, buildah, say)
        rows.append(Row(image.ref, state, time.monotonic() - started))
    if any(row.state in {"built", "made"} for row in rows):
        _prune(buildah, [*made.values()], images())
    return rows


def check() -> Built:
    """The built images; raises ServiceError naming what is missing and the command that
    builds it. Never builds."""
    require_tools()
    buildah = Buildah()
    missing: list[str] = []
    standins: dict[str, StandIn] = {}
    keys: dict[str, str] = {}
    for image in images():
        for standin in stand_ins(image):
            standins[standin.ref] = standin
        keys[image.name] = key(image)
    for standin in standins.values():
        labels = buildah.labels(standin.storage_ref)
        if labels is None or labels.get("dev.chorus.stand-in.key") != standin.key:
            missing.append(f"the stand-in {standin.ref} (key {standin.key})")
    for image in images():
        labels = buildah.labels(image.ref)
        if labels is None or labels.get(INPUTS_LABEL) != keys[image.name]:
            missing.append(f"{image.ref} of the current sources (key {keys[image.name]})")
        elif not archive(image, keys[image.name]).is_file():
            missing.append(str(archive(image, keys[image.name])))
    if missing:
        raise ServiceError(
            f"images: not built: {'; '.join(missing)}; build them with "
            "`.venv/bin/python -m tests.services images prepare` (as root)"
        )
    return Built(
        buildah,
        tuple(standins.values()),
        {image.name: image for image in images()},
        {image.name: archive(image, keys[image.name]) for image in images()},
        keys,
    )


def _ensure_image(image: Image, buildah: Buildah, say: Say) -> str:
    image_key = key(image)
    target = archive(image, image_key)
    labels = buildah.labels(image.ref)
    if labels is not None and labels.get(INPUTS_LABEL) == image_key:
        if target.is_file():
            return "cached"
        buildah.export(image.ref, target)
        return "exported"
    if target.is_file():
        buildah.load(target, image.ref)
        return "loaded"
    log = HOME / "logs" / f"{image.name}-{os.getpid()}.log"
    log.unlink(missing_ok=True)
    say(f"images: building {image.ref} from {image.dockerfile.relative_to(REPO)} (log: {log})")
    args = [
        *BUD_FLAGS,
        f"--file={image.dockerfile}",
        f"--tag={image.ref}",
        f"--label={INPUTS_LABEL}={image_key}",
    ]
    buildah.build([*args, str(REPO)], what=f"images: {image.name}", log=log, say=say)
    # The steps of this build, so that pruning keeps its layer cache.
    steps = re.findall(r"^--> (?:Using cache )?([0-9a-f]{11,64})\s*$", log.read_text(), re.M)
    kept = HOME / "kept" / f"{image.name}.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(sorted(set(steps))))
    buildah.export(image.ref, target)
    for old in target.parent.glob(f"{image.slug}-*.oci.tar"):
        if old != target:
            old.unlink(missing_ok=True)
    log.unlink()
    return "built"


def _prune(buildah: Buildah, standins: list[StandIn], built: tuple[Image, ...]) -> None:
    """Removes the images of older builds: all but the tagged ones and the steps of each
    image's last build (its layer cache). Images made in the last hour stay too: another
    build may be running."""
    keep = [buildah.image_id(s.storage_ref) or "" for s in standins]
    keep += [buildah.image_id(image.ref) or "" for image in built]
    for image in built:
        kept = HOME / "kept" / f"{image.name}.json"
        keep += json.loads(kept.read_text()) if kept.is_file() else []
    listed = json.loads(buildah("images", "--all", "--json").stdout or "[]")
    for entry in listed:
        ident, created = str(entry["id"]), float(entry.get("created", 0))
        if time.time() - created < 3600 or any(
            ident.startswith(k[: len(ident)]) or k.startswith(ident) for k in keep if k
        ):
            continue
        buildah("rmi", ident, check=False)
