"""Runs Chorus Flink jobs one after another in one process, so that they share one JVM.

    python -m chorus_flink.jobserver --port 0    # prints "listening on 127.0.0.1:<port>"

A client connects to the loopback port and sends one JSON line: ``{"argv": [...]}`` (the
arguments of ``python -m chorus_flink.run``), or ``{"script": "job.py", "argv": [...]}``
(a PyFlink script, run as ``__main__``). The answer is one JSON line,
``{"code": 0, "output": "..."}``: the exit code and what the job printed. Then the
connection closes.

Why: a new JVM costs a bounded job about 8 of its 11 seconds (the JVM, class loading, a
cold JIT); in a warm one the same job takes under 3. Each job still gets a mini-cluster and
a table environment of its own. For tests and local tools: a FlinkDeployment runs
``chorus_flink.run`` itself, one job per JVM.

Jobs run one at a time (their prints are captured from ``sys.stdout``). The JVM's own
output goes to this process's stdout and stderr, never into an answer.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import runpy
import socketserver
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from chorus_flink import run


def exit_code(exc: SystemExit) -> int:
    """The code a process would exit with: ``SystemExit("message")`` is 1, as in Python."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code)
    return 1


def run_one(request: Mapping[str, Any]) -> tuple[int, str]:
    """Runs one request as ``python -m chorus_flink.run`` or ``python script`` would."""
    argv = [str(arg) for arg in request.get("argv", [])]
    output = io.StringIO()
    code = 0
    saved_argv = sys.argv
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            script = request.get("script")
            if script is not None:
                sys.argv = [str(script), *argv]
                runpy.run_path(str(script), run_name="__main__")
            else:
                code = run.main(argv)
        except SystemExit as exc:
            code = exit_code(exc)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
    return code, output.getvalue()


def answer(line: bytes) -> dict[str, Any]:
    """The answer to one request line; a malformed one is refused with code 2."""
    try:
        request = json.loads(line)
    except ValueError as exc:
        return {"code": 2, "output": f"jobserver: request is not JSON: {exc}"}
    if not isinstance(request, dict) or not isinstance(request.get("argv", []), list):
        return {"code": 2, "output": "jobserver: expected an object with an 'argv' list"}
    code, output = run_one(request)
    return {"code": code, "output": output}


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline()
        if line.strip():
            self.wfile.write(json.dumps(answer(line)).encode() + b"\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chorus_flink.jobserver", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    args = parser.parse_args(argv)
    with socketserver.TCPServer(("127.0.0.1", args.port), Handler) as server:
        host, port = server.server_address[:2]
        print(f"listening on {host!s}:{port}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
