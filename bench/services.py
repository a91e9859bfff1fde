"""Start-up time and peak memory of the test services (figures for docs/benchmarks.md).

    .venv/bin/python -m bench.services main           # warm: everything already cached
    .venv/bin/python -m bench.services main --cold    # and the install from empty caches

Warm figures are medians over ``--runs`` starts, each in a fresh interpreter. ``--cold``
also times each service's install from an empty ``CHORUS_CACHE`` with empty Go build and
module caches: the Maven resolution of the Kafka jars, the Go build of kube-apiserver and
kubectl, the connector jar (the flink venv itself lives in flink/.venv and is not redone).
Cold start = install + warm start. Peak memory is the kernel's high-water mark (VmHWM) of
the service's process, or for a Flink job the sampled peak of the job's whole process tree
(python and its mini-cluster JVM), read while the service is loaded.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
REPO = Path(__file__).resolve().parents[1]


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakSampler:
    """Samples the summed RSS of a process tree every 100 ms; keeps the peak (MiB)."""

    def __init__(self, root: Callable[[], int | None]) -> None:
        self.root, self.peak_kib, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pid = self.root()
            if pid:
                rss = sum(status_kib(p, "VmRSS") for p in tree_pids(pid))
                self.peak_kib = max(self.peak_kib, rss)
            time.sleep(0.1)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def measure_kafka() -> dict[str, float]:
    from confluent_kafka import Consumer, Producer

    from tests.services.kafka import KafkaService, create_topics

    started = time.monotonic()
    with KafkaService().session() as broker:
        ready = time.monotonic() - started
        create_topics(broker, ["bench.load"], partitions=3)
        producer = Producer(broker.client_config())
        for i in range(10_000):
            producer.produce("bench.load", key=str(i % 64), value=b"x" * 200)
            producer.poll(0)
        producer.flush(30)
        consumer = Consumer(
            broker.client_config(**{"group.id": "bench", "auto.offset.reset": "earliest"})
        )
        consumer.subscribe(["bench.load"])
        seen = 0
        while seen < 10_000:
            seen += len(consumer.consume(1000, timeout=5))
        consumer.close()
        peak = status_kib(broker.pid, "VmHWM") / 1024
    return {"start_s": ready, "peak_mib": peak}


def measure_kube() -> dict[str, float]:
    from tests.services.kube import KubeService

    started = time.monotonic()
    with KubeService().session() as cluster:
        ready = time.monotonic() - started
        cluster.kubectl("get", "crds")
        peak = status_kib(newest("chorus-apiserver"), "VmHWM") / 1024
    return {"start_s": ready, "peak_mib": peak}


def newest(fragment: str) -> int:
    """The newest descendant of this process whose command line contains ``fragment``."""
    me = os.getpid()
    found = [p for p in tree_pids(me) if p != me and fragment in cmdline(p)]
    return max(found) if found else 0


def measure_flink() -> dict[str, float]:
    from confluent_kafka import Producer

    from tests.services.flink import FlinkService
    from tests.services.kafka import KafkaService, create_topics

    with KafkaService().session() as broker, FlinkService().session() as flink:
        suffix = str(time.time_ns())
        source, sink = f"bench.{suffix}.in", f"bench.{suffix}.out"
        create_topics(broker, [source, sink])
        producer = Producer(broker.client_config())
        for i in range(1000):
            at = f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}"
            producer.produce(
                source, value=json.dumps({"key": f"k{i % 5}", "value": i, "event_time": at})
            )
        producer.flush(30)
        config = {
            "bootstrap_servers": broker.bootstrap_servers,
            "source_topic": source,
            "sink_topic": sink,
            "bounded": True,
        }
        with PeakSampler(lambda: newest("chorus_flink.run") or None) as sampler:
            started = time.monotonic()
            flink.run_chorus_job("chorus_flink.jobs.windowed_counts", config, timeout=600)
            wall = time.monotonic() - started
        return {"start_s": wall, "peak_mib": sampler.peak_mib}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def install(name: str) -> dict[str, float]:
    from tests.services import registry

    started = time.monotonic()
    registry()[name].install()
    return {"install_s": time.monotonic() - started}


MEASURES: dict[str, Callable[[], dict[str, float]]] = {
    "kafka": measure_kafka,
    "kube": measure_kube,
    "flink": measure_flink,
}


def run_one(*args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Runs `one` in a fresh interpreter, so each measurement sees only its environment."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.services", "one", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


app = typer.Typer(add_completion=False)


@app.command()
def one(name: str, install_only: Annotated[bool, typer.Option("--install-only")] = False) -> None:
    """Measure one service once; prints JSON (used by `main`)."""
    print(json.dumps(install(name) if install_only else MEASURES[name]()))


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="warm starts per service (median reported)")] = 3,
    cold: Annotated[bool, typer.Option(help="also time the install from empty caches")] = False,
) -> None:
    """Measure every service and print a table."""
    table = Table(title="test services: start and peak memory")
    for column in ("service", "install, cold (s)", "start, warm median (s)", "peak RSS (MiB)"):
        table.add_column(column)
    for name in MEASURES:
        cold_s = "-"
        if cold:
            with (
                tempfile.TemporaryDirectory() as empty,
                console.status(f"{name}: install, cold..."),
            ):
                env = {
                    "CHORUS_CACHE": f"{empty}/chorus",
                    "GOCACHE": f"{empty}/go-build",
                    "GOMODCACHE": f"{empty}/go-mod",
                }
                cold_s = f"{run_one(name, '--install-only', env=env)['install_s']:.0f}"
                # Go marks its module cache read-only; let the temporary directory go.
                subprocess.run(["chmod", "-R", "u+w", empty], check=False)
        results = []
        for i in range(runs):
            with console.status(f"{name}: warm start {i + 1}/{runs}..."):
                results.append(run_one(name))
        start = statistics.median(r["start_s"] for r in results)
        peak = max(r["peak_mib"] for r in results)
        table.add_row(name, cold_s, f"{start:.1f}", f"{peak:.0f}")
    console.print(table)


if __name__ == "__main__":
    app()
