"""What the image builds are made of and keyed by (tests/services/images), without building:
the bases the Dockerfiles name, the files they copy, the references, the apt mirror, the
stand-in's shaping of a Debian tree, and the progress line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.services.base import REPO, ServiceError
from tests.services.images import build
from tests.services.images.build import (
    Image,
    agent_ref,
    base_refs,
    ignore_patterns,
    ignored,
    input_files,
    key,
    operator_ref,
)
from tests.services.images.buildah import last_step
from tests.services.images.standin import DEFAULT_MIRROR, StandIn, apt_mirror, shape

pytestmark = pytest.mark.unit

PYTHON_BASE = "python:3.11.14-slim-bookworm"


@pytest.mark.parametrize("dockerfile", ["agents/Dockerfile", "operator/Dockerfile"])
def test_the_dockerfiles_start_from_the_python_image_a_stand_in_is_made_for(
    dockerfile: str,
) -> None:
    assert base_refs(REPO / dockerfile) == [PYTHON_BASE]
    standin = StandIn.for_ref(PYTHON_BASE, mirror=DEFAULT_MIRROR)
    assert (standin.python, standin.suite) == ("3.11", "bookworm")
    assert standin.packages == ("python3.11", "python3-pip", "ca-certificates")
    assert standin.storage_ref == f"docker.io/library/{PYTHON_BASE}"


def test_the_flink_image_has_bases_no_stand_in_is_made_for() -> None:
    bases = base_refs(REPO / "flink" / "Dockerfile")
    assert bases == ["maven:3.9-eclipse-temurin-17", "flink:2.2.1-scala_2.12-java17"]
    for ref in bases:
        with pytest.raises(
            ServiceError, match=re.escape("only python:<x.y.z>-slim-<debian suite>")
        ):
            StandIn.for_ref(ref, mirror=DEFAULT_MIRROR)


def test_the_references_are_the_operators_default_and_the_charts() -> None:
    chart = REPO / "charts" / "chorus-operator"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    assert agent_ref() == values["agent"]["image"] == "ghcr.io/chorus-dev/chorus-agent:0.1.0"
    assert operator_ref() == f"{values['image']['repository']}:{app_version}"
    assert operator_ref() == "ghcr.io/chorus-dev/chorus-operator:0.1.0"


def test_the_inputs_are_what_the_dockerfile_copies_less_what_dockerignore_leaves_out() -> None:
    files = {
        path.relative_to(REPO).as_posix() for path in input_files(REPO / "agents" / "Dockerfile")
    }
    assert {"pyproject.toml", "uv.lock", "agents/pyproject.toml", "infra/pyproject.toml"} <= files
    assert "agents/src/chorus_agents/cli/agent.py" in files
    assert any(f.startswith("operator/api/src/chorus_api/") for f in files)
    assert not any(f.startswith("operator/src/") for f in files), "the agent copies no operator"
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_dockerignore_patterns_match_at_any_depth_or_from_the_root() -> None:
    patterns = ignore_patterns()
    assert ignored("agents/src/chorus_agents/__pycache__/cli.cpython-311.pyc", patterns)
    assert ignored("tests/harness/test_images.py", patterns)
    assert ignored("agents/.venv", patterns)
    assert not ignored("agents/src/chorus_agents/cli/agent.py", patterns)
    assert not ignored("uv.lock", patterns)


def test_the_key_changes_with_a_copied_file_and_not_with_an_ignored_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "REPO", tmp_path)
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n")
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "Dockerfile").write_text(
        f"ARG PYTHON_IMAGE={PYTHON_BASE}\nFROM ${{PYTHON_IMAGE}} AS build\nCOPY src src\n"
        "FROM ${PYTHON_IMAGE}\nCOPY --from=build /src /src\n"
    )
    image = Image("probe", tmp_path / "Dockerfile", "example.org/probe:1")
    first = key(image)
    (tmp_path / "src" / "pkg" / "__pycache__").mkdir()
    (tmp_path / "src" / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert key(image) == first
    (tmp_path / "src" / "pkg" / "a.py").write_text("A = 2\n")
    assert key(image) != first


def test_the_apt_mirror_is_the_main_archive_of_the_suite(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a snapshot, commented out\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
    )
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.example/x trixie main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    assert apt_mirror("trixie", tmp_path) == "http://other.example/x"
    assert apt_mirror("sid", tmp_path) == DEFAULT_MIRROR


def _debian_tree(root: Path, python3: str = "python3.11") -> Path:
    for folder in (
        "usr/bin",
        "usr/local/bin",
        "usr/lib/python3.11",
        "usr/share/doc/python3.11",
        "usr/share/man/man1",
        "var/lib/dpkg",
        "var/lib/apt/lists",
        "etc/dpkg/dpkg.cfg.d",
        "dev",
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/python3.11").write_text("")
    os.symlink(python3, root / "usr/bin/python3")
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (root / "usr/share/doc/python3.11/copyright").write_text("PSF\n")
    (root / "usr/share/doc/python3.11/changelog.Debian.gz").write_bytes(b"\0")
    (root / "usr/share/man/man1/python3.11.1.gz").write_bytes(b"\0")
    (root / "var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease").write_text("")
    (root / "var/lib/dpkg/status").write_text(
        "Package: python3.11-minimal\nVersion: 3.11.2-6+deb12u9\n\n"
        "Package: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u9\n\n"
    )
    (root / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    return root


def test_shaping_meets_the_official_images_contract(tmp_path: Path) -> None:
    root = _debian_tree(tmp_path)
    assert shape(root, "3.11") == "3.11.2"
    local = root / "usr" / "local" / "bin"
    assert {p.name: os.readlink(p) for p in local.iterdir()} == {
        "python3.11": "/usr/bin/python3.11",
        "python3": "python3.11",
        "python": "python3",
        "pip3": "/usr/bin/pip3",
        "pip": "pip3",
    }
    assert not (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").exists()
    assert [p.name for p in (root / "usr/share/doc").rglob("*") if p.is_file()] == ["copyright"]
    assert not any((root / "usr/share/man").iterdir())
    assert [p.name for p in (root / "var/lib/apt/lists").iterdir()] == ["partial"]
    assert (root / "etc/resolv.conf").read_text() == ""
    assert (
        "path-exclude /usr/share/doc/*"
        in (root / "etc/dpkg/dpkg.cfg.d/chorus-stand-in-slim").read_text()
    )


def test_shaping_refuses_a_tree_whose_python3_is_another_series(tmp_path: Path) -> None:
    root = _debian_tree(tmp_path, python3="python3.12")
    with pytest.raises(ServiceError, match=re.escape("python3 is not python3.11")):
        shape(root, "3.11")


def test_progress_names_the_last_build_step() -> None:
    log = (
        "[1/2] STEP 9/13: COPY infra/pyproject.toml infra/\n--> a169a6e5b53\n"
        "[1/2] STEP 10/13: RUN uv sync --locked --no-dev   --package chorus-agents\n"
        "Resolved 123 packages in 1ms\n"
    )
    assert (
        last_step(log) == "[1/2] STEP 10/13: RUN uv sync --locked --no-dev --package chorus-agents"
    )
    assert last_step("Collecting uv\n") == "starting"
