"""Running a long ``go build -v`` (or ``go run -v``) with progress: the test cluster's and the
Pulumi engine's builders share it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.services.base import ServiceError, log_tail

Say = Callable[[str], None]


def run_go(
    cmd: list[str],
    *,
    what: str,
    cwd: Path,
    log: Path,
    say: Say,
    env: dict[str, str] | None = None,
) -> None:
    """Runs ``cmd`` (a ``go`` command with ``-v``), appending its output to ``log`` and saying
    every 30 s how long ``what`` has run and how many packages it compiled (``-v`` names each
    on stderr). Fails with the log's tail. An interrupted build is killed with every compiler
    it ran (it runs in a session of its own)."""
    compiled = 0
    with log.open("ab") as out:
        out.write(f"$ (cd {cwd} && {' '.join(cmd)})\n".encode())
        out.flush()
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert process.stderr is not None
        stderr = process.stderr

        def pump() -> None:
            nonlocal compiled
            for line in stderr:
                out.write(line)
                compiled += 1

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        started = time.monotonic()
        report_at = started + 30
        try:
            while process.poll() is None:
                time.sleep(1)
                if time.monotonic() >= report_at:
                    report_at += 30
                    elapsed = minutes(time.monotonic() - started)
                    say(f"  {what}: {elapsed}, {compiled} packages so far")
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        reader.join()
    if process.returncode != 0:
        raise ServiceError(f"{what} failed ({process.returncode}):\n{log_tail(log)}")


def minutes(seconds: float) -> str:
    """``seconds`` as ``<m>m<ss>s``."""
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"
