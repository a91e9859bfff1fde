"""Agents at model speed: a code-defined agent whose handler takes as long as a model call.

    .venv/bin/python -m bench.model_speed --runs 3 --baseline 46bba02

The handler waits a latency drawn like a model's (lognormal, median 2 s, sigma 0.8; the
same draw for the same event in every run), then publishes one output. 2,000 events are
waiting in the input topic when the agent starts (``chorus agent run``, its own process,
exactly-once, ``maxInFlight`` 128, every other setting the default). Two key layouts:

- ``spread``: every event its own key: only ``maxInFlight`` bounds the concurrency;
- ``hot``: 50 keys carry 80 % of the events (the rest spread over 1,000 keys): each
  hot key's events run one after the other, so the keys bound the rate too.

The ideal is the lower of the two bounds: ``maxInFlight`` divided by the mean latency
(the sum of the latencies over ``maxInFlight``), and the longest key's sum of latencies.
A run's figure is events/s (outputs read committed, from the moment the agent is ready,
its partitions assigned, to the last output) divided by that ideal; p50 and p99 are from
an event's production to its output being readable, committed, so they include the
backlog's wait.

``--baseline REV`` runs the same agent from the runtime at commit ``REV`` (a git
worktree with its own environment, under the cache), alternating with today's, so both
see the same machine in each run.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()
REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CHORUS_CACHE", Path.home() / ".cache" / "chorus"))
MEDIAN_S, SIGMA = 2.0, 0.8
MAX_IN_FLIGHT = 128


def latency(n: int) -> float:
    """Event ``n``'s handling time: lognormal, median 2 s, sigma 0.8 (the same every run)."""
    return random.Random(n).lognormvariate(math.log(MEDIAN_S), SIGMA)


def key_of(n: int, layout: str) -> str:
    """Event ``n``'s key in ``layout`` (see the module docstring)."""
    if layout == "spread":
        return f"k{n}"
    draw = random.Random(-n - 1).random()
    return f"hot{n % 50}" if draw < 0.8 else f"cold{n % 1000}"


def _handler() -> Any:
    from chorus_agents.handler import Context, DomainEvent, Handler

    class ModelSpeed(Handler):
        """Waits the event's latency, as a model call would, then publishes one output."""

        async def on_event(self, event: DomainEvent, ctx: Context) -> None:
            await asyncio.sleep(latency(event.value["n"]))
            ctx.publish(event.topic.replace(".events", ".outputs"), event.value, key=event.key)

    return ModelSpeed


def __getattr__(name: str) -> Any:  # the handler path names ModelSpeedHandler lazily
    if name == "ModelSpeedHandler":
        return _handler()
    raise AttributeError(name)


@dataclass(frozen=True)
class Figures:
    rate: float
    ideal: float
    p50_s: float
    p99_s: float

    @property
    def ratio(self) -> float:
        return self.rate / self.ideal


def echo_agent(
    broker: Any,
    ns: str,
    name: str,
    handler: str,
    topics: tuple[str, str],
    *,
    partitions: int,
    port: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """The runtime.yaml of an agent reading ``topics[0]`` and writing ``topics[1]``, with
    every topic it needs made on ``broker`` (as the operator would)."""
    from chorus_api.runtime import parse_runtime_config

    from tests.services.kafka import create_topics

    source, sink = topics
    document: dict[str, Any] = {
        "agent": {"namespace": ns, "name": name},
        "kafka": {"bootstrapServers": broker.bootstrap_servers},
        "handler": handler,
        "topics": {"subscribe": [source], "publish": [sink]},
        "http": {"host": "127.0.0.1", "port": port},
        "skills": [{"id": name, "name": name}],
        "instance": f"{name}-0",
        **extra,
    }
    own = parse_runtime_config(document).topics
    create_topics(broker, [source, sink], partitions=partitions)
    create_topics(broker, [own.inbox, own.replies, own.dead_letter, own.audit])
    create_topics(broker, [own.tasks], config={"cleanup.policy": "compact"})
    return document


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def ideal_rate(events: int, layout: str) -> float:
    """Events/s no loop can beat: the lower of the concurrency and the keys' bounds."""
    total = sum(latency(n) for n in range(events))
    per_key: dict[str, float] = defaultdict(float)
    for n in range(events):
        per_key[key_of(n, layout)] += latency(n)
    return events / max(total / MAX_IN_FLIGHT, max(per_key.values()))


def baseline_checkout(rev: str) -> Path:
    """A worktree of ``rev`` with its environment (made once, kept in the cache)."""
    path = CACHE / "bench" / f"runtime-{rev}"
    if not (path / ".venv" / "bin" / "chorus").exists():
        console.print(f"preparing the baseline runtime at {rev} in {path} (once)...")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True
            )
        uv = subprocess.run(
            [str(REPO / "scripts" / "bootstrap.sh")], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run([uv, "sync", "--locked", "--all-packages", "--quiet"], cwd=path, check=True)
    return path


def one(broker: Any, events: int, layout: str, runtime: Path) -> Figures:
    """One measurement: a fresh namespace, the events, the agent from ``runtime``."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    ns = f"b{uuid.uuid4().hex[:8]}"
    source, sink = f"{ns}.events", f"{ns}.outputs"
    document = echo_agent(
        broker,
        ns,
        "speed",
        "bench.model_speed:ModelSpeedHandler",
        (source, sink),
        partitions=6,
        delivery={"guarantee": "exactly-once", "maxInFlight": MAX_IN_FLIGHT},
        port=free_port(),
    )
    workdir = CACHE / "work" / f"bench-{ns}"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "runtime.yaml"
    config.write_text(yaml.safe_dump(document))
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    produced: dict[int, float] = {}
    for n in range(events):
        producer.produce(source, key=key_of(n, layout), value=json.dumps({"n": n}))
        produced[n] = time.time()
    producer.flush(30)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": f"bench-{ns}",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.assign([TopicPartition(sink, p, 0) for p in range(6)])
    log = (workdir / "agent.log").open("wb")
    agent = subprocess.Popen(
        [str(runtime / ".venv" / "bin" / "chorus"), "agent", "run", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 1800
    try:
        # The clock starts when the agent is ready (its partitions assigned): throughput as
        # deployed, without the process's start.
        ready = f"http://127.0.0.1:{document['http']['port']}/readyz"
        while not _ready(ready):
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}): {workdir}")
            time.sleep(0.05)
        started = time.time()
        while len(seen) < events:
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}): {workdir}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(seen)} of {events} outputs after 30 minutes")
            for message in consumer.consume(500, 0.2):
                if message.error() is None:
                    seen.setdefault(json.loads(message.value() or b"")["n"], time.time())
    finally:
        agent.terminate()
        agent.wait(60)
        consumer.close()
    elapsed = max(seen.values()) - started
    waits = sorted(seen[n] - produced[n] for n in seen)
    return Figures(
        rate=events / elapsed,
        ideal=ideal_rate(events, layout),
        p50_s=statistics.median(waits),
        p99_s=waits[int(0.99 * (len(waits) - 1))],
    )


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="runs, each measuring every variant once")] = 3,
    events: Annotated[int, typer.Option(help="events per measurement")] = 2000,
    baseline: Annotated[
        str | None, typer.Option(help="a commit whose runtime runs beside today's")
    ] = None,
    layouts: Annotated[str, typer.Option(help="key layouts, comma-separated")] = "spread,hot",
) -> None:
    """Measures every variant once per run, alternating, and prints per-run ratios."""
    sys.path.insert(0, str(REPO))
    from tests.services.kafka import KafkaService

    runtimes = {"today": REPO}
    if baseline:
        runtimes[f"at {baseline}"] = baseline_checkout(baseline)
    results: dict[tuple[str, str], list[Figures]] = defaultdict(list)
    with KafkaService().session() as broker:
        for run in range(runs):
            for layout in layouts.split(","):
                for label, runtime in runtimes.items():
                    console.print(f"run {run + 1} of {runs}: {layout}, {label}...")
                    measured = one(broker, events, layout, runtime)
                    results[(layout, label)].append(measured)
                    console.print(
                        f"  {measured.rate:.1f} events/s of an ideal {measured.ideal:.1f}: "
                        f"{measured.ratio:.2f}"
                    )
    table = Table(title=f"model speed: {events} events, maxInFlight {MAX_IN_FLIGHT}")
    for column in ("keys", "runtime", "events/s", "ideal", "ratio per run", "median", "p50 s"):
        table.add_column(column)
    for (layout, label), figures in results.items():
        ratios = [f.ratio for f in figures]
        table.add_row(
            layout,
            label,
            f"{statistics.median(f.rate for f in figures):.1f}",
            f"{figures[0].ideal:.1f}",
            ", ".join(f"{r:.2f}" for r in ratios),
            f"{statistics.median(ratios):.2f}",
            f"{statistics.median(f.p50_s for f in figures):.1f}",
        )
        console.print_json(
            json.dumps({"layout": layout, "runtime": label, "runs": [vars(f) for f in figures]})
        )
    console.print(table)


if __name__ == "__main__":
    app()
