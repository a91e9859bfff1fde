"""The images built for real (tests/services/images): the python stand-in meets the official
image's contract, and the agent and operator images, built by buildah from their Dockerfiles
as they are, run (runc, no network) and are exported as OCI archives naming them.

They are the cluster tier's: the images are built before pytest (`python -m tests.services
prepare`, as root, with buildah and debootstrap); without them these tests skip outside CI,
naming what is missing, and fail in CI.
"""

from __future__ import annotations

import json
import tarfile
from typing import IO, Any

import pytest
from chorus_api.runtime import DEFAULT_CONFIG_PATH

from tests.services.images.build import INPUTS_LABEL, Built, agent_ref
from tests.services.images.standin import FOR_LABEL, PYTHON_LABEL

pytestmark = pytest.mark.cluster

ACCOUNTS = ("passwd", "group", "shadow", "gshadow", ".pwd.lock")


@pytest.fixture(scope="module")
def built(built_images: Built) -> Built:
    return built_images


def run(built: Built, image: str, *argv: str, entrypoint: bool = False) -> tuple[int, str]:
    """Runs ``argv`` in ``image`` (a name of ``built.images``, or ``base``); returns the exit
    code and what it printed (stdout, then stderr)."""
    ref = built.stand_ins[0].storage_ref if image == "base" else built.images[image].ref
    result = built.buildah.run(ref, argv, entrypoint=entrypoint)
    return result.returncode, result.stdout + result.stderr


# --- the stand-in base ---------------------------------------------------------------------


def test_the_stand_in_has_the_official_images_commands_in_usr_local_bin(built: Built) -> None:
    code, out = run(
        built,
        "base",
        "sh",
        "-c",
        "for c in python3.11 python3 python pip groupadd useradd; do command -v $c; done",
    )
    assert code == 0, out
    assert out.split() == [
        "/usr/local/bin/python3.11",
        "/usr/local/bin/python3",
        "/usr/local/bin/python",
        "/usr/local/bin/pip",
        "/usr/sbin/groupadd",
        "/usr/sbin/useradd",
    ]


def test_the_stand_ins_python_is_311_and_pip_installs_without_a_marker(built: Built) -> None:
    code, out = run(
        built,
        "base",
        "python",
        "-c",
        "import pathlib, sys, sysconfig; print(sys.version_info[:2]); "
        "print(pathlib.Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED').exists())",
    )
    assert (code, out.split("\n")[:2]) == (0, ["(3, 11)", "False"]), out
    # pip refuses before anything else where the marker is; here it goes on (no network:
    # --no-index, and pip itself is already there).
    code, out = run(built, "base", "pip", "install", "--no-index", "--dry-run", "pip")
    assert code == 0, out
    assert "externally-managed" not in out


def test_the_stand_in_is_small_and_says_it_is_a_stand_in(built: Built) -> None:
    standin = built.stand_ins[0]
    labels = built.buildah.labels(standin.storage_ref) or {}
    assert labels[FOR_LABEL] == standin.ref == "python:3.11.14-slim-bookworm"
    assert labels[PYTHON_LABEL].startswith("3.11.")
    assert "stand-in" in labels["org.opencontainers.image.title"]
    assert "not the official image" in labels["org.opencontainers.image.description"]
    _, out = run(
        built,
        "base",
        "sh",
        "-c",
        "ls -A /var/lib/apt/lists; find /usr/share/doc -type f ! -name copyright; "
        "find /usr/share/man /usr/share/info /usr/share/locale -mindepth 1 2>/dev/null; true",
    )
    assert out.split() == ["partial"], "apt lists, docs or man pages left in the stand-in"
    # The official python:3.11-slim is about 45 MB compressed; Debian's Python with pip a
    # little more.
    assert standin.archive.stat().st_size < 80_000_000


# --- the agent image -----------------------------------------------------------------------


def test_the_agent_image_is_the_operators_default_built_on_the_stand_in(built: Built) -> None:
    agent = built.images["agent"]
    assert agent.ref == agent_ref() == "ghcr.io/chorus-dev/chorus-agent:0.1.0"
    labels = built.buildah.labels(agent.ref) or {}
    assert labels[INPUTS_LABEL] == built.keys["agent"]
    assert labels[FOR_LABEL] == built.stand_ins[0].ref  # inherited from the base
    assert labels["org.opencontainers.image.title"] == "chorus-agent"


def test_the_agent_image_runs_chorus_as_its_numeric_user(built: Built) -> None:
    code, out = run(built, "agent", "chorus", "--help")
    assert code == 0, out
    assert "agent" in out and "mcp" in out
    assert run(built, "agent", "id", "-u") == (0, "10001\n")


def test_the_agent_entry_point_without_a_config_fails_saying_so(built: Built) -> None:
    code, out = run(built, "agent", entrypoint=True)  # `chorus agent run`, nothing mounted
    assert code == 2, out
    assert f"error: runtime config {DEFAULT_CONFIG_PATH}: cannot read" in out


# --- the operator image --------------------------------------------------------------------


def test_the_operator_entry_point_starts(built: Built) -> None:
    code, out = run(built, "operator", "--help", entrypoint=True)
    assert code == 0, out
    assert out.startswith("usage: chorus-operator")
    assert "--agent-image" in out


def test_the_operator_image_defaults_to_the_agent_image_built_here(built: Built) -> None:
    code, out = run(
        built,
        "operator",
        "python",
        "-c",
        "import dataclasses; from chorus_operator.settings import Settings; "
        "print(next(f.default for f in dataclasses.fields(Settings) if f.name == 'agent_image'))",
    )
    assert (code, out.strip()) == (0, built.images["agent"].ref)


# --- the archives --------------------------------------------------------------------------


def _archived(path: str) -> tuple[dict[str, Any], dict[str, Any], list[list[str]]]:
    """An OCI archive's one index entry, its image configuration, and the paths in each of
    its layers."""
    with tarfile.open(path) as archive:

        def blob(digest: str) -> IO[bytes]:
            member = archive.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return member

        index_file = archive.extractfile("index.json")
        assert index_file is not None
        entry: dict[str, Any] = json.load(index_file)["manifests"][0]
        manifest = json.load(blob(entry["digest"]))
        config: dict[str, Any] = json.load(blob(manifest["config"]["digest"]))
        layers = []
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r|*") as files:
                layers.append([member.name.removeprefix("./") for member in files])
        return entry, config, layers


@pytest.mark.parametrize("name", ["agent", "operator"])
def test_each_image_is_an_oci_archive_naming_it(built: Built, name: str) -> None:
    entry, config, layers = _archived(str(built.archives[name]))
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == built.images[name].ref
    assert config["config"]["Labels"][INPUTS_LABEL] == built.keys[name]
    assert config["config"]["User"] == "10001:10001"
    assert built.keys[name] in built.archives[name].name
    # The build's own mounts (the machine's CA bundle, the steps' /root, the files a runtime
    # mounts over) left nothing in the layers above the base; the runtime stage's RUN
    # (groupadd, useradd) changed the account files only (and /run's times: the runtime
    # mounts a tmpfs there).
    above_base = {path for paths in layers[1:] for path in paths}
    assert not {p for p in above_base if p.startswith(("root/", "etc/uv", "etc/ssl"))}
    assert not above_base & {"etc/hosts", "etc/hostname", "etc/resolv.conf"}
    accounts = {f"etc/{name}{suffix}" for name in ACCOUNTS for suffix in ("", "-")}
    assert set(layers[1]) <= {"etc", "run", *accounts}
