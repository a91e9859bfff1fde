"""What every local service shares: the cache, free ports, waiting, and process lifetime.

Used by ``chorus dev up`` (the product) and by the tests (``tests/services`` re-exports it).
A service installs once into the cache (``$CHORUS_CACHE``, default ``~/.cache/chorus``),
starts as a child process on a free loopback port, and is stopped at the end. Its
*handle* is a small frozen dataclass (a bootstrap address, a kubeconfig); it is written to
``<cache>/run/<name>.json`` while the service runs, so that a service started by hand
(``python -m tests.services kafka up``) is reused instead of started again.

:data:`REPO` is the source checkout: ``$CHORUS_REPO``, else the first directory holding
``Pulumi.yaml`` above this file, else above the working directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

REPO_MARKER = "Pulumi.yaml"


def find_repo(start: Path | None = None) -> Path:
    """The checkout: ``$CHORUS_REPO``, else the nearest directory above ``start`` (default:
    this file, then the working directory) that holds :data:`REPO_MARKER`; else the working
    directory (an installed wheel outside a checkout: the services that need the checkout's
    files, Flink's project, then fail naming the missing path)."""
    configured = os.environ.get("CHORUS_REPO")
    if configured:
        return Path(configured).resolve()
    starts = [start] if start is not None else [Path(__file__), Path.cwd()]
    for origin in starts:
        here = origin.resolve()
        for directory in (here, *here.parents):
            if (directory / REPO_MARKER).is_file():
                return directory
    return Path.cwd().resolve()


REPO = find_repo()
CACHE = Path(os.environ.get("CHORUS_CACHE", Path.home() / ".cache" / "chorus"))
RUN_DIR = CACHE / "run"


class ServiceError(RuntimeError):
    """A service could not be installed or started; the message ends with its log."""


def in_ci() -> bool:
    """In CI a service that does not start fails the run; elsewhere tests may skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_tail(log: Path, lines: int = 60) -> str:
    if not log.exists():
        return f"(no log at {log})"
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.25,
) -> None:
    """Polls ``check`` until it is true; fails early if ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_tail(log) if log else ""
            raise ServiceError(f"{what}: process exited with {process.returncode}\n{tail}")
        try:
            if check():
                return
        except Exception as exc:  # a check may raise while the service comes up
            last_error = exc
        time.sleep(interval)
    tail = log_tail(log) if log else ""
    raise ServiceError(f"{what}: not ready after {timeout:.0f}s (last error: {last_error})\n{tail}")


def run_checked(cmd: list[str], *, what: str, log: Path, **kwargs: Any) -> None:
    """Runs an install step, appending its output to ``log``; fails with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False, **kwargs)
    if result.returncode != 0:
        raise ServiceError(f"{what} failed ({result.returncode}): {' '.join(cmd)}\n{log_tail(log)}")


def stop_process(pid: int, *, grace: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to signal 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


H = TypeVar("H")


class Service(ABC, Generic[H]):
    """One real service. Subclasses say how to install it, start it, and describe it."""

    name: str
    handle_type: type[H]

    @property
    def home(self) -> Path:
        """Where the installed service lives: kept between runs."""
        return CACHE / self.name

    @property
    def state_file(self) -> Path:
        return RUN_DIR / f"{self.name}.json"

    @abstractmethod
    def install(self) -> None:
        """Installs the service into ``self.home`` unless it is there already."""

    @abstractmethod
    def check(self) -> None:
        """Raises ServiceError naming each missing file (a jar, a binary, a CRD) and how to get
        it back, unless everything the service starts from is in place.

        Never installs anything. It runs after :meth:`install` and before :meth:`launch`, so a
        service never starts half-made (an apiserver without a CRD would refuse that kind
        later, in some test, with no word of why)."""

    @abstractmethod
    def launch(self, workdir: Path) -> tuple[subprocess.Popen[bytes], H]:
        """Starts the service in ``workdir`` and returns it once it is healthy."""

    def running(self) -> H | None:
        """The handle of an instance started earlier and still alive, if any."""
        if not self.state_file.exists():
            return None
        state = json.loads(self.state_file.read_text())
        if not pid_alive(state["pid"]):
            self.state_file.unlink(missing_ok=True)
            return None
        return self.handle_type(**state["handle"])

    def up(self) -> H:
        """Installs and starts the service for later use, or returns the one already running.

        The instance is recorded in the state file, so it outlives this process (`down` ends it).
        """
        existing = self.running()
        if existing is not None:
            return existing
        process, handle = self._start()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        state = {"pid": process.pid, "handle": dataclasses.asdict(handle)}  # type: ignore[call-overload]
        self.state_file.write_text(json.dumps(state, indent=2, default=str))
        return handle

    def _start(self, *, install: bool = True) -> tuple[subprocess.Popen[bytes], H]:
        if install:
            self.install()
        self.check()
        prune_workdirs(CACHE / "work", self.name)
        workdir = CACHE / "work" / f"{self.name}-{os.getpid()}-{time.time_ns()}"
        workdir.mkdir(parents=True, exist_ok=True)
        return self.launch(workdir)

    def down(self) -> bool:
        """Stops the running instance; returns whether there was one."""
        if not self.state_file.exists():
            return False
        state = json.loads(self.state_file.read_text())
        stop_process(state["pid"])
        self.state_file.unlink(missing_ok=True)
        return True

    @contextlib.contextmanager
    def session(self, *, install: bool = True) -> Iterator[H]:
        """The service for the duration of the block.

        Reuses an instance started with `up` (and leaves it running); otherwise starts a
        private one, not recorded in the state file so that concurrent test runs never
        share or stop each other's, and stops it afterwards. ``install=False`` only checks
        that it is installed (the tests: their builds run before pytest, never under it).
        """
        existing = self.running()
        if existing is not None:
            yield existing
            return
        process, handle = self._start(install=install)
        try:
            yield handle
        finally:
            stop_process(process.pid)


def prune_workdirs(root: Path, name: str, *, older_than: float = 24 * 3600) -> None:
    """Removes this service's work directories (data and logs) untouched for over a day.

    "Touched" is the newest change to the directory or a file directly in it: a running
    service keeps appending to its log there, so its directory is never taken.
    """
    if not root.exists():
        return
    cutoff = time.time() - older_than
    for workdir in root.glob(f"{name}-*"):
        with contextlib.suppress(OSError):
            entries = [workdir, *workdir.iterdir()]
            if max(entry.stat().st_mtime for entry in entries) < cutoff:
                shutil.rmtree(workdir, ignore_errors=True)


def spawn(
    cmd: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Starts a service process in its own process group, its output going to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    return subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )
