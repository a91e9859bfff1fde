"""The job server the Flink tests share: jobs one after another in one warm JVM.

Every bounded job test runs through it (the ``flink`` fixture); these tests check what it
does when a job fails, a request is malformed, or a job outlives its timeout.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.services.base import ServiceError, pid_alive
from tests.services.flink import FlinkEnv, job_server

pytestmark = pytest.mark.integration


def ask(env: FlinkEnv, line: bytes) -> dict[str, object]:
    assert env.job_server is not None
    host, _, port = env.job_server.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(line)
        answer: dict[str, object] = json.loads(connection.makefile("rb").readline())
    return answer


def test_a_failing_job_and_a_bad_request_get_their_error_and_the_server_goes_on(
    flink: FlinkEnv, tmp_path: Path
) -> None:
    assert flink.job_server is not None, "the fixture shares a job server"
    with pytest.raises(ServiceError, match="has no build") as failed:
        flink.run_chorus_job("chorus_flink.config", {})
    assert f"on the job server at {flink.job_server}" in str(failed.value)

    assert ask(flink, b"not json\n") == {
        "code": 2,
        "output": "jobserver: request is not JSON: Expecting value: line 1 column 1 (char 0)",
    }
    assert ask(flink, b'{"argv": "trading"}\n')["code"] == 2

    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello', *sys.argv[1:])\nraise SystemExit(3)\n")
    with pytest.raises(ServiceError, match="exited with 3") as exited:
        flink.run_job(str(script), ["from", "the server"])
    assert "hello from the server" in str(exited.value)
    script.write_text("import sys\nprint('still', *sys.argv[1:])\n")
    assert flink.run_job(str(script), ["serving"]).stdout == "still serving\n"


def test_a_job_past_its_timeout_stops_the_server_and_later_jobs_run_alone(
    flink: FlinkEnv, tmp_path: Path
) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n")
    quick = tmp_path / "quick.py"
    quick.write_text("print('alone')\n")
    with job_server(flink) as private:
        assert private.job_server_pid is not None and private.job_server != flink.job_server
        with pytest.raises(ServiceError, match="still running after 2s on the job server"):
            private.run_job(str(script), [], timeout=2)
        assert not pid_alive(private.job_server_pid)
        # The server is gone: the next job runs in a process of its own, as without one.
        assert private.run_job(str(quick), [], timeout=120).stdout.strip() == "alone"
