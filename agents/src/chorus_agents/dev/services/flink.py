"""PyFlink jobs in a local mini-cluster: flink/'s own environment plus the Kafka SQL connector.

What ``chorus dev up`` runs a domain's streams with; ``tests/services/flink.py`` re-exports it.

There is no long-running Flink server: each job starts its own mini-cluster (a JVM child of
the job's Python process) and ends with it. ``install`` makes sure ``flink/.venv`` is in
step with ``flink/uv.lock`` (apache-flink pins old grpcio and protobuf, so it cannot share
the workspace venv) and resolves the jars pinned in ``flink/pom.xml`` into the cache.
``launch`` only starts a placeholder process, so the service has the same lifetime and state
file as the others; :meth:`FlinkEnv.run_job` does the work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chorus_agents.dev.services.base import (
    CACHE,
    REPO,
    Service,
    ServiceError,
    log_tail,
    run_checked,
    spawn,
    stop_process,
    wait_until,
)
from chorus_agents.dev.services.kafka import check_maven_jars, resolve_maven_jars

FLINK = REPO / "flink"
POM = FLINK / "pom.xml"
VENV_PYTHON = FLINK / ".venv" / "bin" / "python"
CONNECTOR_GLOB = "flink-sql-connector-kafka-*.jar"
# The mini-cluster's JVM: small, since tests run beside a broker on a small machine, and
# with the C1 compiler alone: planning a job (and compiling its generated code) took 19 to
# 22 CPU seconds with C2 and 12 without (a `chorus dev up maintenance` run, measured twice
# each), at a throughput cost local loads do not notice. The benchmarks use C2, as deployed.
JVM_ARGS = "-Xms128m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError"


@dataclass(frozen=True)
class FlinkEnv:
    """How PyFlink jobs run: the flink/ venv's Python, the connector jar, a log dir."""

    python: str
    connector_jar: str
    log_dir: str
    job_server: str | None = None
    """``host:port`` of a :mod:`chorus_flink.jobserver` (see :func:`job_server`): then
    :meth:`run_job` runs ``chorus_flink.run`` and scripts there, in its warm JVM."""
    job_server_pid: int | None = None

    def environment(self, log_dir: Path) -> dict[str, str]:
        """The job's environment: the flink venv alone, logs in ``log_dir``, a small JVM."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
        }
        env.update(
            {
                "VIRTUAL_ENV": str(Path(self.python).parent.parent),
                "CHORUS_FLINK_CONNECTOR_JAR": self.connector_jar,
                "FLINK_LOG_DIR": str(log_dir),
                "JVM_ARGS": env.get("CHORUS_FLINK_JVM_ARGS", JVM_ARGS),
            }
        )
        return env

    def run_job(
        self, module: str, args: list[str], timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``python -m module args`` (or ``python module args`` for a ``.py`` path).

        Raises :class:`ServiceError` with the job's output if it fails or outlives
        ``timeout``; on timeout the whole process group (the mini-cluster JVM too) is killed.
        """
        if self.job_server is not None and (module == "chorus_flink.run" or module.endswith(".py")):
            with contextlib.suppress(ConnectionRefusedError):  # the server is gone: run alone
                return self._run_on_server(module, args, timeout)
        target = [module] if module.endswith(".py") else ["-m", module]
        cmd = [self.python, *target, *args]
        # One log directory per run: jobs may run side by side and Flink names its log file
        # after the user and host only.
        logs = Path(self.log_dir) / f"{Path(module).name}-{time.time_ns()}"
        logs.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.environment(logs),
            cwd=FLINK,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise ServiceError(
                f"flink job {module}: still running after {timeout:.0f}s, killed\n"
                f"{tail(output)}\n(logs in {logs})"
            ) from None
        finally:
            # The JVM normally ends with its Python parent; make sure nothing outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        result = subprocess.CompletedProcess(cmd, process.returncode, output, "")
        if result.returncode != 0:
            raise ServiceError(
                f"flink job {module}: exited with {result.returncode}\n{tail(output)}\n"
                f"(logs in {logs})"
            )
        return result

    def _run_on_server(
        self, module: str, args: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        assert self.job_server is not None
        request: dict[str, Any] = {"argv": args}
        if module.endswith(".py"):
            request["script"] = module
        host, _, port = self.job_server.rpartition(":")
        cmd = [module, *args]  # as run on the server
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.settimeout(timeout)
            connection.sendall(json.dumps(request).encode() + b"\n")
            try:
                line = connection.makefile("rb").readline()
            except TimeoutError:
                # Still running: only ending the server (and its JVM) frees it for the next.
                if self.job_server_pid is not None:
                    stop_process(self.job_server_pid, grace=5)
                raise ServiceError(
                    f"flink job {module}: still running after {timeout:.0f}s on the job "
                    f"server at {self.job_server}, which was stopped (logs in {self.log_dir})"
                ) from None
        if not line:
            raise ConnectionRefusedError(f"the job server at {self.job_server} closed")
        reply = json.loads(line)
        result = subprocess.CompletedProcess(cmd, int(reply["code"]), str(reply["output"]), "")
        if result.returncode != 0:
            raise ServiceError(
                f"flink job {module}: exited with {result.returncode}\n{tail(result.stdout)}\n"
                f"(on the job server at {self.job_server}; logs in {self.log_dir})"
            )
        return result

    def start_chorus_job(
        self, job: str, config: Mapping[str, Any], *, options: Mapping[str, str] | None = None
    ) -> RunningJob:
        """Starts a ``chorus_flink.jobs`` module like :meth:`run_chorus_job`, in the background.

        For unbounded jobs: the caller ends it with :meth:`RunningJob.kill` (SIGKILL of the
        whole process group, the Python driver and its mini-cluster JVM, as a crash would).
        """
        settings = {"parallelism.default": "1", **(options or {})}
        args = [job, "--config", json.dumps(dict(config))]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        logs = Path(self.log_dir) / f"{job}-{time.time_ns()}"
        logs.mkdir(parents=True, exist_ok=True)
        output = logs / "output.log"
        process = self.spawn_module("chorus_flink.run", args, output=output, logs=logs)
        return RunningJob(job=job, process=process, output=output)

    def spawn_module(
        self, module: str, args: list[str], *, output: Path, logs: Path
    ) -> subprocess.Popen[bytes]:
        """Starts ``python -m module args`` in the flink environment, in a process group of
        its own (so that a kill takes its JVM too), its output going to ``output``."""
        with output.open("ab") as sink:
            return subprocess.Popen(
                [self.python, "-m", module, *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(logs),
                cwd=FLINK,
                start_new_session=True,
            )

    def run_chorus_job(
        self,
        job: str,
        config: Mapping[str, Any],
        *,
        timeout: float = 300.0,
        options: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs a ``chorus_flink.jobs`` module through ``chorus_flink.run``, waiting for its end.

        ``options`` are Flink configuration options; parallelism defaults to 1 here.
        """
        settings = {"parallelism.default": "1", **(options or {})}
        args = [job, "--config", json.dumps(dict(config))]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        return self.run_job("chorus_flink.run", args, timeout=timeout)


@dataclass(frozen=True)
class RunningJob:
    """A job started by :meth:`FlinkEnv.start_chorus_job`; its output goes to ``output``."""

    job: str
    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        """The job's output so far (stdout and stderr)."""
        return self.output.read_text(errors="replace")

    def check_running(self) -> None:
        """Raises :class:`ServiceError` with the output's tail if the job has ended."""
        if self.process.poll() is not None:
            raise ServiceError(
                f"flink job {self.job}: exited with {self.process.returncode}\n"
                f"{tail(self.text())}\n(logs in {self.output.parent})"
            )

    def kill(self) -> None:
        """SIGKILLs the driver and its JVM (the process group) and waits for the driver."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def job_server(env: FlinkEnv) -> Iterator[FlinkEnv]:
    """``env`` with a :mod:`chorus_flink.jobserver` beside it for the block: its
    :meth:`FlinkEnv.run_job` then runs bounded jobs one after another in one warm JVM (2 to
    3 s a job instead of 10 or more). Jobs started with :meth:`FlinkEnv.start_chorus_job`
    keep a process of their own (they are killed as a crash would be)."""
    logs = Path(env.log_dir) / f"jobserver-{time.time_ns()}"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "jobserver.log"
    process = env.spawn_module("chorus_flink.jobserver", [], output=log, logs=logs)
    try:
        wait_until(
            lambda: "listening on" in log.read_text(errors="replace"),
            what="flink job server",
            timeout=60,
            process=process,
            log=log,
        )
        found = re.search(r"listening on (\S+)", log.read_text(errors="replace"))
        if found is None:
            raise ServiceError(f"flink job server: no address in its log\n{log_tail(log)}")
        yield replace(env, job_server=found.group(1), job_server_pid=process.pid)
    finally:
        stop_process(process.pid, grace=5)


def tail(output: str, lines: int = 80) -> str:
    return "\n".join(output.splitlines()[-lines:])


class FlinkService(Service[FlinkEnv]):
    name = "flink"
    handle_type = FlinkEnv

    @property
    def install_log(self) -> Path:
        return self.home / "install.log"

    def sync_venv(self) -> None:
        """``uv sync`` in flink/, unless the venv was synced from this very lock file."""
        lock = hashlib.sha256(
            (FLINK / "uv.lock").read_bytes() + (FLINK / "pyproject.toml").read_bytes()
        ).hexdigest()[:16]
        marker = self.home / f"venv-synced-{lock}"
        if VENV_PYTHON.exists() and marker.exists():
            return
        bootstrap = subprocess.run(
            ["bash", str(REPO / "scripts" / "bootstrap.sh")],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "CHORUS_CACHE": str(CACHE)},
        )
        if bootstrap.returncode != 0:
            raise ServiceError(f"flink: scripts/bootstrap.sh failed\n{bootstrap.stderr}")
        uv = bootstrap.stdout.strip()
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env.setdefault("UV_CACHE_DIR", str(CACHE / "uv"))
        run_checked(
            [uv, "sync"], what="flink: uv sync in flink/", log=self.install_log, cwd=FLINK, env=env
        )
        for old in self.home.glob("venv-synced-*"):
            old.unlink()
        marker.touch()

    def connector_jar(self) -> Path:
        jars = resolve_maven_jars(POM, self.home, log=self.install_log)
        found = sorted(jars.glob(CONNECTOR_GLOB))
        if not found:
            raise ServiceError(f"flink: no {CONNECTOR_GLOB} in {jars} (from {POM})")
        return found[0]

    def install(self) -> None:
        if shutil.which("java") is None or shutil.which("mvn") is None:
            raise ServiceError("flink: needs java (17+) and mvn on PATH")
        if not (FLINK / "pyproject.toml").is_file():
            raise ServiceError(f"flink: no Flink project at {FLINK} (set CHORUS_REPO)")
        self.home.mkdir(parents=True, exist_ok=True)
        self.sync_venv()
        self.connector_jar()

    def check(self) -> None:
        if shutil.which("java") is None:
            raise ServiceError("flink: needs java (17+) on PATH (scripts/prereqs.sh)")
        if not VENV_PYTHON.is_file():
            raise ServiceError(
                f"flink: {VENV_PYTHON} is missing; run `uv sync --locked` in {FLINK} "
                "(scripts/test.sh and scripts/demo.sh do)"
            )
        jars = check_maven_jars(POM, self.home, what="flink")
        if not any(jars.glob(CONNECTOR_GLOB)):
            raise ServiceError(f"flink: no {CONNECTOR_GLOB} in {jars}; remove {jars} and run again")

    def launch(self, workdir: Path) -> tuple[subprocess.Popen[bytes], FlinkEnv]:
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # A placeholder with the service's lifetime: jobs bring their own mini-cluster.
        process = spawn(["sleep", "infinity"], log=workdir / "placeholder.log")
        env = FlinkEnv(
            python=str(VENV_PYTHON), connector_jar=str(self.connector_jar()), log_dir=str(logs)
        )
        return process, env
