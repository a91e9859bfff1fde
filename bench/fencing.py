"""The ``read_committed`` stall after a SIGKILL: how long a killed agent's open transaction
holds readers back, restarted under the same name and under a new one.

    .venv/bin/python -m bench.fencing --runs 3

An echo agent (``chorus agent run``, exactly-once, default settings) works through a
backlog of events, each echoed with 4 KB of padding. The bench watches the echo topic
until a partition has records written and not committed (its high watermark past its
last stable offset: a transaction is open), SIGKILLs the agent at that moment, and
starts it again at once: under the same instance name (the same transactional id, so
the new producer fences the old one at ``init_transactions``), or under a new name, as a
replaced pod (its open transaction ends only when it times out: ``transaction.timeout.ms``
10 s, and the broker looks for timed-out transactions every second). The stall is the
time from the kill until that partition's last stable offset passes the high watermark
seen at the kill. The two kinds alternate in each run.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=False)
console = Console()
REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CHORUS_CACHE", Path.home() / ".cache" / "chorus"))
PARTITIONS = 3


def _handler() -> Any:
    from chorus_agents.handler import Context, DomainEvent, Handler

    class Echo(Handler):
        """Echoes each event with 4 KB of padding (transactions with some weight)."""

        async def on_event(self, event: DomainEvent, ctx: Context) -> None:
            ctx.publish(
                event.topic.replace(".numbers", ".echoes"),
                {"n": event.value["n"], "pad": "x" * 4000},
                key=event.key,
            )

    return Echo


def __getattr__(name: str) -> Any:  # the handler path names EchoHandler lazily
    if name == "EchoHandler":
        return _handler()
    raise AttributeError(name)


def ends(admin: Any, topic: str, level: Any) -> list[int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = admin.list_offsets(dict.fromkeys(partitions, latest), isolation_level=level)
    return [futures[tp].result().offset for tp in partitions]


def one(broker: Any, *, new_name: bool, runtime: Path = REPO) -> float:
    """One kill and restart; the seconds readers stalled."""
    from confluent_kafka import IsolationLevel, Producer
    from confluent_kafka.admin import AdminClient

    from bench.model_speed import echo_agent

    ns = f"f{uuid.uuid4().hex[:8]}"
    source, sink = f"{ns}.numbers", f"{ns}.echoes"
    document = echo_agent(
        broker, ns, "echo", "bench.fencing:EchoHandler", (source, sink), partitions=PARTITIONS
    )
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 20})
    for n in range(20_000):
        producer.produce(source, key=str(n % 64), value=json.dumps({"n": n}))
    producer.flush(30)
    workdir = CACHE / "work" / f"bench-{ns}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "agent.log").open("ab")

    def start(instance: str) -> subprocess.Popen[bytes]:
        document["instance"] = instance
        config = workdir / f"{instance}.yaml"
        config.write_text(yaml.safe_dump(document))
        return subprocess.Popen(
            [str(runtime / ".venv" / "bin" / "chorus"), "agent", "run", "--config", str(config)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    agent = start("echo-0")
    try:
        time.sleep(3)
        deadline = time.monotonic() + 120
        while True:
            stable = ends(admin, sink, IsolationLevel.READ_COMMITTED)
            high = ends(admin, sink, IsolationLevel.READ_UNCOMMITTED)
            open_on = [p for p in range(PARTITIONS) if high[p] > stable[p] > 0]
            if open_on:
                break
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError(f"no open transaction seen: {workdir}")
        agent.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        agent.wait(30)
        agent = start("echo-1" if new_name else "echo-0")
        partition, mark = open_on[0], high[open_on[0]]
        while ends(admin, sink, IsolationLevel.READ_COMMITTED)[partition] < mark:
            if time.monotonic() - killed > 180:
                raise RuntimeError(f"readers stalled over 180 s: {workdir}")
            time.sleep(0.05)
        return time.monotonic() - killed
    finally:
        agent.kill()
        agent.wait(30)


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="kills of each kind")] = 3,
    baseline: Annotated[
        str | None, typer.Option(help="a commit whose runtime is measured too (new name only)")
    ] = None,
) -> None:
    """Kills and restarts the agent ``runs`` times each way, alternating; prints the stalls.

    With ``--baseline`` the runtime at that commit (``bench.model_speed``'s worktree) is
    killed and replaced under a new name too, on the same broker."""
    sys.path.insert(0, str(REPO))
    from bench.model_speed import baseline_checkout
    from tests.services.kafka import KafkaService

    kinds: list[tuple[str, bool, Path]] = [
        ("same name", False, REPO),
        ("new name (a replaced pod)", True, REPO),
    ]
    if baseline:
        kinds.append((f"new name, runtime at {baseline}", True, baseline_checkout(baseline)))
    stalls: dict[str, list[float]] = {label: [] for label, _, _ in kinds}
    with KafkaService().session() as broker:
        for run in range(runs):
            for label, new_name, runtime in kinds:
                seconds = one(broker, new_name=new_name, runtime=runtime)
                stalls[label].append(seconds)
                console.print(f"run {run + 1}: {label}: readers stalled {seconds:.1f} s")
    table = Table(title="read_committed stall after a SIGKILL inside a transaction")
    for column in ("restart", "stall per run (s)", "median (s)"):
        table.add_column(column)
    for label, values in stalls.items():
        table.add_row(
            label, ", ".join(f"{v:.1f}" for v in values), f"{statistics.median(values):.1f}"
        )
    console.print(table)


if __name__ == "__main__":
    app()
