"""The real Pulumi engine for tests: the CLI and its Kubernetes provider, from the Go module proxy.

Neither ``get.pulumi.com`` nor GitHub's release downloads can be reached here, so both are
built, like the kube-apiserver (:mod:`tests.services.kube`), from Go modules in the repository:

- ``tests/pulumi/cli``: the CLI (``github.com/pulumi/pulumi/pkg/v3/cmd/pulumi``, a ``tool`` of
  that module), its version stamped as upstream's Makefile does. It lands in
  ``<cache>/pulumi/cli/<hash>/bin/pulumi``: ``PulumiCommand(root=...)`` takes that root.
- ``tests/pulumi/kubernetes``: the provider ``pulumi-resource-kubernetes``. Its ``main`` embeds
  a schema that upstream generates before building (``go run generate.go``), so the build
  copies upstream's ``cmd/pulumi-resource-kubernetes`` from the module cache into a scratch
  copy of that module, generates there, and builds there; the repository is never written.
  It lands in ``<cache>/pulumi/kubernetes/<hash>/``.
- The provider is then installed as a plugin (``pulumi plugin install --file``) into a
  ``PULUMI_HOME`` of that pair, ``<cache>/pulumi/home/<hash>/``.

Each hash covers its module's files and its build commands, so a change to either rebuilds
and nothing else does; builds of other hashes are dropped once a new one is finished.

**Versions.** The engine picks a provider plugin whose version *equals* the one the Python
SDK asks for (``pulumi-kubernetes`` in ``uv.lock``; the CLI's ``SelectCompatiblePlugin``), and
without it would try to download that version, which fails offline. So the provider is stamped
and installed as the locked SDK's version (:func:`sdk_kubernetes_version`). Its code is what
the module proxy serves: see ``tests/pulumi/README.md`` for which commit that is and how far it
is from the locked SDK. The Python language host is not built: the Automation API runs inline
programs in-process, and the engine talks to them over gRPC (``--client``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.services.base import CACHE, REPO, ServiceError, run_checked
from tests.services.gobuild import minutes, run_go

HOME = CACHE / "pulumi"
CLI_MODULE = REPO / "tests" / "pulumi" / "cli"
PROVIDER_MODULE = REPO / "tests" / "pulumi" / "kubernetes"
LOCK = REPO / "uv.lock"

CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
CLI_VERSION_VAR = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
PROVIDER = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_CMD = "cmd/pulumi-resource-kubernetes"
PROVIDER_FILES = ("main.go", "generate.go", "schema.json", "terraform-mapping.json")
"""What upstream's ``cmd/pulumi-resource-kubernetes`` holds; ``generate.go`` writes the two
``*-embed.json`` files that ``main.go`` embeds."""
PROVIDER_BINARY = "pulumi-resource-kubernetes"
SDK_PACKAGE = "pulumi-kubernetes"

Say = Callable[[str], None]


@dataclass(frozen=True)
class PulumiEngine:
    """A built Pulumi CLI and a ``PULUMI_HOME`` with the Kubernetes provider installed."""

    root: str
    """Holds ``bin/pulumi``: ``pulumi.automation.PulumiCommand(root=root)``."""
    home: str
    """``PULUMI_HOME``: the provider plugin is installed there."""
    cli_version: str
    kubernetes_version: str
    """The provider plugin's version, which is the locked ``pulumi-kubernetes`` SDK's."""

    @property
    def cli(self) -> str:
        return str(Path(self.root) / "bin" / "pulumi")

    def env(self, backend: Path, passphrase: str = "chorus-tests") -> dict[str, str]:
        """What a command or a LocalWorkspace needs: this home, a file backend at ``backend``,
        a passphrase for its secrets, no update checks, and no plugin download (a missing
        plugin then fails at once, naming itself, instead of asking the network)."""
        return {
            "PULUMI_HOME": self.home,
            "PULUMI_BACKEND_URL": backend.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }


def go_requirement(module: Path, path: str) -> str:
    """The version of ``path`` that ``module``'s go.mod requires, e.g. ``v3.276.0``."""
    gomod = module / "go.mod"
    found = re.search(rf"^\s*{re.escape(path)} (v\S+)", gomod.read_text(), re.MULTILINE)
    if not found:
        raise ServiceError(f"pulumi: {gomod} does not require {path}")
    return found.group(1)


def cli_version() -> str:
    """The CLI's version: that of ``pkg/v3`` in ``tests/pulumi/cli/go.mod``."""
    return go_requirement(CLI_MODULE, "github.com/pulumi/pulumi/pkg/v3")


def sdk_kubernetes_version(lock: Path = LOCK) -> str:
    """The ``pulumi-kubernetes`` version locked in ``uv.lock`` (what ``infra/`` runs with):
    its resources ask the engine for a provider plugin of exactly this version."""
    packages = tomllib.loads(lock.read_text()).get("package", [])
    versions = [str(p["version"]) for p in packages if p.get("name") == SDK_PACKAGE]
    if len(versions) != 1:
        raise ServiceError(f"pulumi: {lock} locks {len(versions)} versions of {SDK_PACKAGE}")
    return versions[0]


def cli_build_command(out: Path) -> list[str]:
    ldflags = f"-s -w -X {CLI_VERSION_VAR}={cli_version()}"
    return _go_build(f"-ldflags={ldflags}", str(out / "bin" / "pulumi"), CLI_PACKAGE)


def provider_build_command(out: Path) -> list[str]:
    stamp = f"-X {PROVIDER}/pkg/version.Version={sdk_kubernetes_version()}"
    return _go_build(f"-ldflags=-s -w {stamp}", str(out / PROVIDER_BINARY), ".")


def _go_build(ldflags: str, output: str, package: str) -> list[str]:
    # nice 19: two cores, shared with other test runs. -v names each package as it is
    # compiled, which is the progress we report.
    return ["nice", "-n", "19", "go", "build", "-v", "-trimpath", ldflags, "-o", output, package]


def _digest(module: Path, *commands: list[str]) -> hashlib._Hash:
    digest = hashlib.sha256("\n".join(" ".join(c) for c in commands).encode())
    for path in sorted(module.iterdir()):
        if path.is_file() and (path.suffix == ".go" or path.name in {"go.mod", "go.sum"}):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest


def cli_dir() -> Path:
    """Where the CLI of the current sources lives (built or not)."""
    digest = _digest(CLI_MODULE, cli_build_command(Path("-")))
    return HOME / "cli" / digest.hexdigest()[:16]


def _generate_command() -> list[str]:
    return ["nice", "-n", "19", "go", "run", "-v", "generate.go"]


def provider_dir() -> Path:
    """Where the provider of the current sources and locked SDK lives (built or not)."""
    generate = [f"VERSION={sdk_kubernetes_version()}", *_generate_command()]
    digest = _digest(PROVIDER_MODULE, generate, provider_build_command(Path("-")))
    return HOME / "kubernetes" / digest.hexdigest()[:16]


def home_dir() -> Path:
    """The ``PULUMI_HOME`` where this CLI installed this provider."""
    pair = f"{cli_dir().name} {provider_dir().name}".encode()
    return HOME / "home" / hashlib.sha256(pair).hexdigest()[:16]


def plugin_path(home: Path | None = None) -> Path:
    """The installed provider's binary in ``home`` (default: :func:`home_dir`)."""
    plugin = f"resource-kubernetes-v{sdk_kubernetes_version()}"
    return (home or home_dir()) / "plugins" / plugin / PROVIDER_BINARY


def check_pulumi() -> PulumiEngine:
    """The built engine; raises ServiceError naming what is missing and the command that
    builds it. Never builds."""
    cli = cli_dir() / "bin" / "pulumi"
    missing = [path for path in (cli, plugin_path()) if not path.is_file()]
    if missing:
        raise ServiceError(
            f"pulumi: missing {', '.join(map(str, missing))}; build it with "
            "`.venv/bin/python -m tests.services pulumi prepare` (about 25 minutes the first "
            "time; scripts/test.sh's prepare builds it too)"
        )
    return PulumiEngine(
        root=str(cli_dir()),
        home=str(home_dir()),
        cli_version=cli_version(),
        kubernetes_version=sdk_kubernetes_version(),
    )


def install_pulumi(say: Say = print) -> PulumiEngine:
    """Builds what is missing (the CLI, the provider), installs the provider into the pair's
    ``PULUMI_HOME``, and returns the engine. Says how each build goes every 30 s.

    Raises ServiceError, ending with the build log, when Go is missing or a step fails."""
    if shutil.which("go") is None:
        raise ServiceError("pulumi: `go` is not on PATH; install Go (see tests/pulumi/*/go.mod)")
    _build(cli_dir(), "the Pulumi CLI " + cli_version(), _build_cli, say)
    _build(
        provider_dir(),
        f"the Kubernetes provider (as {sdk_kubernetes_version()})",
        _build_provider,
        say,
    )
    _install_plugin(say)
    return check_pulumi()


def _build(target: Path, what: str, build: Callable[[Path, Path, Say], None], say: Say) -> None:
    """Runs ``build(staging, log, say)`` unless ``target`` is built; then drops other builds."""
    if target.is_dir():
        return
    # Concurrent runs may build at once: each into its own staging dir, renamed at the end.
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log = target.parent / f"build-{os.getpid()}.log"
    log.unlink(missing_ok=True)
    started = time.monotonic()
    say(f"pulumi: building {what} into {target} (log: {log})")
    try:
        build(staging, log, say)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a few hundred MB; the log stays
        raise
    say(f"pulumi: built {what} in {minutes(time.monotonic() - started)}")
    log.unlink()
    _drop_others(target.parent, keep=target.name)
    try:
        staging.rename(target)
    except OSError:  # another run finished the same build first
        shutil.rmtree(staging, ignore_errors=True)


def _build_cli(staging: Path, log: Path, say: Say) -> None:
    run_go(
        cli_build_command(staging), what="pulumi: CLI: go build", cwd=CLI_MODULE, log=log, say=say
    )


def _build_provider(staging: Path, log: Path, say: Say) -> None:
    """Builds in a scratch copy of the module: its go.mod and go.sum, plus upstream's
    ``cmd/pulumi-resource-kubernetes`` at the required commit, with the schema generated."""
    scratch = staging / "src"
    scratch.mkdir()
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(PROVIDER_MODULE / name, scratch / name)
    found = subprocess.run(
        ["go", "mod", "download", "-json", PROVIDER],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise ServiceError(
            f"pulumi: go mod download {PROVIDER} failed:\n{found.stdout}{found.stderr}"
        )
    upstream = Path(json.loads(found.stdout)["Dir"]) / PROVIDER_CMD
    for name in PROVIDER_FILES:
        # copyfile, not copy: the module cache's files are read-only.
        shutil.copyfile(upstream / name, scratch / name)
    run_go(
        _generate_command(),
        what="pulumi: provider schema: go run generate.go",
        cwd=scratch,
        log=log,
        say=say,
        env={**os.environ, "VERSION": sdk_kubernetes_version()},
    )
    run_go(
        provider_build_command(staging),
        what="pulumi: provider: go build",
        cwd=scratch,
        log=log,
        say=say,
    )
    shutil.rmtree(scratch)
    (staging / "source.json").write_text(
        json.dumps(
            {
                "module": PROVIDER,
                "version": go_requirement(PROVIDER_MODULE, PROVIDER),
                "stamped_as": sdk_kubernetes_version(),
            },
            indent=2,
        )
        + "\n"
    )


def _install_plugin(say: Say) -> None:
    """Installs the built provider into the pair's ``PULUMI_HOME`` unless it is there."""
    home = home_dir()
    if plugin_path(home).is_file():
        return
    staging = home.with_name(f"{home.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    version = sdk_kubernetes_version()
    say(f"pulumi: installing the Kubernetes provider {version} into {home}")
    cli = cli_dir() / "bin" / "pulumi"
    log = home.parent / f"install-{os.getpid()}.log"
    log.unlink(missing_ok=True)
    run_checked(
        [
            str(cli),
            "plugin",
            "install",
            "resource",
            "kubernetes",
            f"v{version}",
            "--file",
            str(provider_dir() / PROVIDER_BINARY),
        ],
        what="pulumi: plugin install",
        log=log,
        env={**os.environ, "PULUMI_HOME": str(staging), "PULUMI_SKIP_UPDATE_CHECK": "true"},
    )
    log.unlink()
    if not plugin_path(staging).is_file():
        raise ServiceError(f"pulumi: plugin install left no {plugin_path(staging)}")
    _drop_others(home.parent, keep=home.name)
    try:
        staging.rename(home)
    except OSError:  # another run installed the same pair first
        shutil.rmtree(staging, ignore_errors=True)


def _drop_others(parent: Path, *, keep: str) -> None:
    for old in parent.iterdir():
        if old.is_dir() and "." not in old.name and old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
