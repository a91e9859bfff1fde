"""What goes into the images (operator/Dockerfile, agents/Dockerfile), without a Docker engine.

The Dockerfiles are parsed: base images pinned, uv pinned to the release scripts/bootstrap.sh
uses, a numeric non-root USER (the one the chart's securityContext expects), entry points
that are console scripts of the packages installed. Then the build stage is replayed: its
COPY instructions (filtered by .dockerignore) fill a staging directory and its ``uv sync``
commands run there, so a file the build needs but does not copy, or a lock that does not
match, fails here as it would in ``docker build``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.services.base import CACHE

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "chorus-operator"


@dataclass(frozen=True)
class Image:
    dockerfile: Path
    package: str
    """The workspace package the image installs."""
    entrypoint: list[str]
    script: str
    """The console script the entry point runs."""


IMAGES = {
    "operator": Image(
        REPO / "operator" / "Dockerfile", "chorus-operator", ["chorus-operator"], "chorus-operator"
    ),
    "agent": Image(
        REPO / "agents" / "Dockerfile", "chorus-agents", ["chorus", "agent", "run"], "chorus"
    ),
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int
    """Index of the FROM this instruction belongs to (0: the first stage)."""


def parse(dockerfile: Path) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, continuation lines joined."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def args_defaults(instructions: list[Instruction]) -> dict[str, str]:
    found = {}
    for item in instructions:
        if item.keyword == "ARG" and "=" in item.args:
            name, _, value = item.args.partition("=")
            found[name] = value
    return found


def expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m.group(1) or m.group(2)], text)


def project(path: Path) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads(path.read_text())["project"]
    return data


def workspace_members() -> dict[str, Path]:
    """Package name -> its directory, for every member of the uv workspace."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    return {str(project(REPO / m / "pyproject.toml")["name"]): REPO / m for m in members}


def uv_version() -> str:
    found = re.search(r"^UV_VERSION=(\S+)$", (REPO / "scripts" / "bootstrap.sh").read_text(), re.M)
    assert found, "scripts/bootstrap.sh pins no UV_VERSION"
    return found.group(1)


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(item.stage for item in instructions)
    return [item for item in instructions if item.stage == last]


def uv_syncs(instructions: list[Instruction]) -> list[list[str]]:
    return [
        shlex.split(item.args)
        for item in instructions
        if item.keyword == "RUN" and item.args.startswith("uv sync")
    ]


# --- the Dockerfiles themselves -----------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", IMAGES)
def test_base_images_are_pinned(name: str) -> None:
    instructions = parse(IMAGES[name].dockerfile)
    variables = args_defaults(instructions)
    stages = [item.args.split()[0] for item in instructions if item.keyword == "FROM"]
    assert len(stages) >= 2, "a build stage and a slim runtime stage"
    for image in stages:
        resolved = expand(image, variables)
        # An exact Python patch release on a named Debian release, never a moving tag.
        assert re.fullmatch(
            r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", resolved
        ), f"{name}: base image {resolved!r} is not pinned"


@pytest.mark.unit
@pytest.mark.parametrize("name", IMAGES)
def test_uv_is_the_release_bootstrap_pins(name: str) -> None:
    runs = [i.args for i in parse(IMAGES[name].dockerfile) if i.keyword == "RUN"]
    installs = [re.search(r"\buv==(\S+)", run) for run in runs]
    assert [m.group(1) for m in installs if m] == [uv_version()]


@pytest.mark.unit
@pytest.mark.parametrize("name", IMAGES)
def test_build_installs_the_workspace_package_from_the_lock(name: str) -> None:
    image = IMAGES[name]
    syncs = uv_syncs(parse(image.dockerfile))
    assert syncs, f"{name}: no `uv sync`"
    members = workspace_members()
    for command in syncs:
        assert "--locked" in command and "--no-dev" in command
        package = command[command.index("--package") + 1]
        assert package == image.package and package in members
    # The final sync installs the package itself, not an editable link to /src.
    assert "--no-editable" in syncs[-1]


@pytest.mark.unit
@pytest.mark.parametrize("name", IMAGES)
def test_runtime_stage_runs_as_a_numeric_non_root_user(name: str) -> None:
    users = [i.args for i in final_stage(parse(IMAGES[name].dockerfile)) if i.keyword == "USER"]
    assert users, f"{name}: the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)


@pytest.mark.unit
def test_operator_user_is_the_one_the_chart_runs_as() -> None:
    users = [
        i.args for i in final_stage(parse(IMAGES["operator"].dockerfile)) if i.keyword == "USER"
    ]
    uid, _, gid = users[-1].partition(":")
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment and f"runAsGroup: {gid}" in deployment


@pytest.mark.unit
@pytest.mark.parametrize("name", IMAGES)
def test_entry_point_is_a_console_script_of_the_package(name: str) -> None:
    image = IMAGES[name]
    entrypoints = [
        i.args for i in final_stage(parse(image.dockerfile)) if i.keyword == "ENTRYPOINT"
    ]
    assert [json.loads(e) for e in entrypoints] == [image.entrypoint]
    scripts = project(workspace_members()[image.package] / "pyproject.toml")["scripts"]
    assert isinstance(scripts, dict) and image.script in scripts


@pytest.mark.unit
def test_operator_image_default_is_the_chart_image() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    tag = re.search(r"-t (\S+)", IMAGES["operator"].dockerfile.read_text())
    assert tag and tag.group(1) == f"{values['image']['repository']}:{chart['appVersion']}"
    agent_tag = re.search(r"-t (\S+)", IMAGES["agent"].dockerfile.read_text())
    assert agent_tag and agent_tag.group(1) == values["agent"]["image"]


# --- replaying the build stage --------------------------------------------------------------


def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``relative`` (or a folder above it) out of the context."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(prefix.rsplit("/", 1)[-1], bare)
            ):
                return True
    return False


def replay_copies(instructions: list[Instruction], staging: Path) -> None:
    """Does the first stage's COPYs from the repository (the build context) into ``staging``."""
    patterns = ignore_patterns()
    workdir = Path("/")
    for item in instructions:
        if item.stage < 0:  # ARGs before the first FROM
            continue
        if item.stage > 0:
            break
        if item.keyword == "WORKDIR":
            workdir = Path(item.args)
        if item.keyword != "COPY":
            continue
        *sources, dest = shlex.split(item.args)
        assert not any(s.startswith("--from") for s in sources)
        target = staging / (workdir / dest).relative_to(workdir)
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: not in the build context"
            assert not ignored(source, patterns), f"COPY {source}: .dockerignore leaves it out"
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target if not dest.endswith("/") else target / origin.name,
                    ignore=lambda d, names: [
                        n for n in names if ignored(str((Path(d) / n).relative_to(REPO)), patterns)
                    ],
                    dirs_exist_ok=True,
                )
            else:
                into = target / origin.name if dest.endswith("/") else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)


@pytest.fixture(scope="module")
def uv() -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "bootstrap.sh")], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.mark.integration
@pytest.mark.parametrize("name", IMAGES)
def test_build_stage_installs_the_entry_point(uv: str, tmp_path: Path, name: str) -> None:
    image = IMAGES[name]
    instructions = parse(image.dockerfile)
    staging, venv = tmp_path / "src", tmp_path / "venv"
    staging.mkdir()
    replay_copies(instructions, staging)
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(CACHE / "uv"),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
    }
    for command in uv_syncs(instructions):
        result = subprocess.run(
            [uv, *command[1:]], cwd=staging, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr[-3000:]}"
    script = venv / "bin" / image.script
    assert script.is_file(), f"{name}: no console script {image.script}"
    # Installed as a wheel, not a link back into the build directory.
    site = venv / "lib" / "python3.11" / "site-packages"
    module = image.package.replace("-", "_")
    dist_info = next(site.glob(f"{module}-*.dist-info"))
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert re.search(rf"^{re.escape(image.script)} = ", entry_points, re.M), entry_points
    assert not list(site.glob("*.pth")) or all(
        str(staging) not in pth.read_text() for pth in site.glob("*.pth")
    )
    assert (site / module).is_dir()
    # The entry point's target module imports, once it exists in the sources.
    target = re.search(rf"^{re.escape(image.script)} = ([\w.]+):", entry_points, re.M)
    assert target
    source = workspace_members()[image.package] / "src" / Path(*target.group(1).split("."))
    if source.with_suffix(".py").is_file() or source.is_dir():
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", f"import {target.group(1)}"],
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
        # And the entry point, exactly as the image runs it, answers --help.
        command = [str(script), *image.entrypoint[1:], "--help"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)
        assert result.returncode == 0, f"{' '.join(image.entrypoint)} --help:\n{result.stderr}"
