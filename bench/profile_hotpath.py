"""CPU accounting for ``bench.runtime``: per process and thread, and by area of the hot path.

:class:`Meter` reads ``/proc/<pid>/stat`` (user + system seconds) of the server, the
broker and the client around a timed drive. The rest says where an agent process's CPU
goes per message: per-thread CPU and py-spy samples, by area.

``bench.runtime main --profile DIR`` runs it on the exactly-once no-op agent; to read the
recorded profiles again (``DIR/run<n>.txt`` py-spy's samples, ``.json`` the rest):

    .venv/bin/python -m bench.profile_hotpath DIR

Two sources, because py-spy sees only Python code, and sampling a process slows it:

- the *timed* drive's CPU seconds per thread (``/proc/<pid>/task/*/stat`` before and
  after), in three kinds: librdkafka's own threads (``rdk:*``: broker I/O, framing, the
  transaction coordinator's requests), the event loop's thread, and the
  ``asyncio.to_thread`` workers (polling, ``send_offsets_to_transaction``,
  ``commit_transaction``);
- one more drive right after it under ``py-spy record --gil --threads --format raw``:
  samples of the thread holding the GIL, i.e. running Python (a wait in ``epoll`` or in a
  blocking librdkafka call releases it and is not sampled). Each sample goes to the
  *area* of its innermost frame that belongs to one (:data:`AREAS`; a call into a C
  extension counts for the Python line making it: ``producer.produce`` is the writer's).

The event loop's seconds are shared out by its samples, the workers' by theirs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False)
console = Console(width=150)  # wide tables also in a log

LIBRDKAFKA = "librdkafka's own threads (broker I/O, framing, transaction requests)"
WORKER_CALLS = "librdkafka calls on to_thread workers, GIL held"
UNSAMPLED = "a thread kind without samples"
OTHER = "other"


def _code(functions: str, path: str) -> str:
    """A pattern for frames of ``functions`` (a regex alternation) in a file ending ``path``."""
    return rf"^({functions}) \(\S*{path}:"


AREAS: tuple[tuple[str, str], ...] = (
    # (area, regular expression over py-spy's "function (file:line)"); the innermost
    # frame that matches one decides
    ("poll (consumer.poll, consume)", _code(r"Pipeline\._poll_batch", "binding/pipeline\\.py")),
    ("produce, transaction (writer)", r"chorus_agents/binding/writer\.py:"),
    (
        "decode (headers, JSON, ProtoJSON, required fields)",
        _code(
            r"decode_request|_required_plan|_complete|_route|_json_rpc_request|header_map|"
            r"_version_supported",
            "binding/codec\\.py",
        )
        + "|"
        + _code("from_dict|from_json", "chorus_agents/proto\\.py"),
    ),
    (
        "encode (ProtoJSON, JSON, headers)",
        _code("encode_response|_dumps|_encode_headers", "binding/codec\\.py")
        + "|"
        + _code("to_dict|to_json", "chorus_agents/proto\\.py")
        + r"|^to_stream_response ",
    ),
    ("tracing (OpenTelemetry spans, context)", r"chorus_agents/tracing\.py:|/opentelemetry/"),
    ("audit records", r"chorus_agents/audit\.py:"),
    ("metrics (prometheus)", r"chorus_agents/metrics\.py:|/prometheus_client/"),
    ("task store", r"chorus_agents/tasks\.py:|^AcceptingTaskStore\.|/a2a/server/tasks/"),
    ("the no-op executor itself (a2a's new_text_message)", r"^noop_executor\.<locals>\.NoOp\."),
    (
        "dispatch, executor (lean run, ObservedExecutor)",
        r"chorus_agents/binding/dispatch\.py:|chorus_agents/handler\.py:|"
        r"/a2a/server/agent_execution/|/a2a/server/events/|/a2a/server/request_handlers/",
    ),
    (
        "server (request context, reply)",
        r"chorus_agents/binding/server\.py:|/a2a/server/context\.py:|/a2a/extensions/",
    ),
    (
        "pipeline (lanes, slots, ledger, outbox, commit cycle)",
        r"chorus_agents/binding/(pipeline|ledger|outbox|inputs)\.py:",
    ),
    (
        "hand-offs to threads (asyncio.to_thread, the pool)",
        r"asyncio/threads\.py:|^BaseEventLoop\.run_in_executor |call_soon_threadsafe|"
        r"_write_to_self|_read_from_self|_chain_future|/concurrent/futures/|/threading\.py:|"
        r"/queue\.py:",
    ),
    (
        "event loop and tasks (scheduling, futures, locks, timeouts)",
        r"/asyncio/|/selectors\.py:",
    ),
    ("HTTP gateway (uvicorn, starlette)", r"/uvicorn/|/starlette/|/h11/|/anyio/"),
)
_COMPILED = [(area, re.compile(pattern)) for area, pattern in AREAS]
_LINE = re.compile(r"^thread \((\d+)\): (.*) (\d+)$")


def area_of(frames: list[str]) -> str:
    """The area of a stack, innermost frame first; :data:`OTHER` when no frame has one."""
    if frames and frames[-1].startswith("_WorkItem.run ("):
        return WORKER_CALLS  # a C function the pool runs directly
    for frame in reversed(frames):
        for area, pattern in _COMPILED:
            if pattern.search(frame):
                return area
    return OTHER


def parse_raw(text: str) -> dict[int, Counter[str]]:
    """py-spy's raw format (``--threads``): samples per thread id and area."""
    found: dict[int, Counter[str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        tid, stack, count = int(match[1]), match[2], int(match[3])
        frames = stack.split(";")[1:]  # the first is the thread's name
        found.setdefault(tid, Counter())[area_of(frames)] += count
    return found


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) per thread of ``pid``, with the thread's name."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            found[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> Any:
    """CPU seconds per thread between two :func:`thread_cpu` readings."""
    return {
        tid: (name, seconds - before.get(tid, (name, 0.0))[1])
        for tid, (name, seconds) in after.items()
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (every thread) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """CPU seconds of named processes and wall time between :meth:`start` and :meth:`stop`;
    with ``threads_of``, that process's CPU seconds per thread too (:attr:`threads`)."""

    def __init__(self, threads_of: int | None = None, **pids: int) -> None:
        self.pids, self.threads_of = pids, threads_of
        self.figures: dict[str, float] = {}
        self.threads: dict[int, tuple[str, float]] = {}
        self._cpu: dict[str, float] = {}
        self._began = 0.0

    def start(self) -> None:
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.threads_of is not None:
            self.threads = thread_cpu(self.threads_of)
        self._began = time.perf_counter()

    def stop(self) -> None:
        wall = time.perf_counter() - self._began
        self.figures = {
            f"{name}_cpu_s": cpu_seconds(pid) - self._cpu[name] for name, pid in self.pids.items()
        }
        self.figures["wall_s"] = wall
        if self.threads_of is not None:
            self.threads = spent(self.threads, thread_cpu(self.threads_of))


def kind_of(tid: int, name: str, pid: int) -> str:
    if name.startswith("rdk:"):
        return "librdkafka"
    return "event loop" if tid == pid else "workers"


@dataclass
class Profile:
    """One agent's figures: the timed drive's CPU per thread, the profiled drive's samples."""

    pid: int
    messages: int
    """Messages of the timed drive."""
    threads: dict[int, tuple[str, float]] = field(default_factory=dict)
    samples: dict[int, Counter[str]] = field(default_factory=dict)

    def seconds_by_kind(self) -> defaultdict[str, float]:
        found: defaultdict[str, float] = defaultdict(float)
        for tid, (name, seconds) in self.threads.items():
            found[kind_of(tid, name, self.pid)] += seconds
        return found

    def seconds_by_area(self) -> defaultdict[str, float]:
        """CPU seconds per area: librdkafka's threads as one, the event loop's and the
        workers' seconds each shared out by their own samples."""
        counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for tid, by_area in self.samples.items():
            name = self.threads.get(tid, ("", 0.0))[0]
            counts[kind_of(tid, name, self.pid)].update(by_area)
        found: defaultdict[str, float] = defaultdict(float)
        for kind, seconds in self.seconds_by_kind().items():
            total = sum(counts[kind].values())
            if kind == "librdkafka":
                found[LIBRDKAFKA] += seconds
            elif not total:
                found[f"{UNSAMPLED} ({kind})"] += seconds
            else:
                for area, n in counts[kind].items():
                    found[area] += seconds * n / total
        return found

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "messages": self.messages,
            "threads": {str(t): [name, s] for t, (name, s) in self.threads.items()},
            "samples": {str(t): dict(c) for t, c in self.samples.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> Profile:
        return cls(
            int(data["pid"]),
            int(data["messages"]),
            {int(t): (str(v[0]), float(v[1])) for t, v in data["threads"].items()},
            {int(t): Counter(c) for t, c in data["samples"].items()},
        )


class Sampler:
    """``py-spy record`` on ``pid`` while the ``with`` body runs; the raw samples go to
    ``output``, per thread and area to :attr:`samples` (see the module docstring)."""

    def __init__(self, pid: int, output: Path, *, py_spy: str, rate: int = 250) -> None:
        self.pid, self.output, self.py_spy, self.rate = pid, output, py_spy, rate
        self.samples: dict[int, Counter[str]] = {}
        self._spy: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sampler:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        options = ["--rate", str(self.rate), "--format", "raw", "--threads", "--gil"]
        options += ["--full-filenames", "--output", str(self.output)]
        self._spy = subprocess.Popen(
            [self.py_spy, "record", "--pid", str(self.pid), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.5)  # attached and sampling
        if self._spy.poll() is not None:
            error = self._spy.stderr.read().decode() if self._spy.stderr else ""
            raise RuntimeError(f"py-spy on {self.pid} exited: {error}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        spy = self._spy
        assert spy is not None
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        if exc_type is None:
            self.samples = parse_raw(self.output.read_text())


def table(profiles: list[Profile], title: str) -> Table:
    """Per area: share of the agent's CPU and microseconds per message, over ``profiles``."""
    seconds: defaultdict[str, float] = defaultdict(float)
    for profile in profiles:
        for area, value in profile.seconds_by_area().items():
            seconds[area] += value
    messages = sum(p.messages for p in profiles) or 1
    total = sum(seconds.values()) or 1.0
    samples = sum(sum(c.values()) for p in profiles for c in p.samples.values())
    result = Table(title=f"{title} ({samples:,} py-spy samples; {messages:,} messages timed)")
    for column in ("area", "% of agent CPU", "µs per message"):
        result.add_column(column, justify="left" if column == "area" else "right")
    for area, value in sorted(seconds.items(), key=lambda item: -item[1]):
        result.add_row(area, f"{100 * value / total:.1f}", f"{1e6 * value / messages:,.0f}")
    result.add_row("total", "100.0", f"{1e6 * total / messages:,.0f}")
    kinds: defaultdict[str, float] = defaultdict(float)
    for profile in profiles:
        for kind, value in profile.seconds_by_kind().items():
            kinds[kind] += value
    result.caption = "CPU by thread: " + ", ".join(
        f"{kind} {100 * value / total:.0f} %" for kind, value in sorted(kinds.items())
    )
    return result


@app.command()
def summarize(
    directory: Annotated[Path, typer.Argument(help="--profile's directory: run<n>.txt, .json")],
) -> None:
    """Prints the area table of the profiles recorded there (samples read again)."""
    profiles = []
    for figures in sorted(directory.glob("run*.json")):
        profile = Profile.from_json(json.loads(figures.read_text()))
        profile.samples = parse_raw(figures.with_suffix(".txt").read_text())
        profiles.append(profile)
    console.print(table(profiles, f"{directory}: where the agent's CPU goes"))


if __name__ == "__main__":
    app()
