"""The smallest real end-to-end slice of Chorus, on one machine (`make demo`).

A single-node Kafka (KRaft) starts; a stream of trades is produced; a PyFlink job in a
mini-cluster aggregates it per symbol in event-time windows; the signals are read back
from Kafka and every one is checked against an independent computation. The reference
domains (issue 7) replace this with `chorus dev up trading`.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Annotated

import typer
from confluent_kafka import Producer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tests.services.flink import FlinkEnv, FlinkService
from tests.services.kafka import KafkaBroker, KafkaService, create_topics, read_topic

console = Console()
SYMBOLS = ("ACME", "GLOBEX", "INITECH", "UMBRELLA")
WINDOW = timedelta(seconds=10)
START = datetime(2026, 1, 5, 9, 30, 0)

Window = tuple[str, datetime]  # (symbol, window start)


def trades(count: int, seed: int) -> list[dict[str, object]]:
    """Trades in event-time order, about one a second per symbol, with sizes to sum."""
    rng = random.Random(seed)
    moment = START
    out: list[dict[str, object]] = []
    for _ in range(count):
        moment += timedelta(milliseconds=rng.randint(50, 400))
        out.append(
            {
                "key": rng.choice(SYMBOLS),
                "value": rng.randint(1, 500),
                "event_time": moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            }
        )
    return out


def expected_windows(events: list[dict[str, object]]) -> dict[Window, tuple[int, int]]:
    """What the job must emit: per symbol and closed window, the trade count and volume.

    The job's watermark trails the newest event by 5 s and the bounded source ends with a
    final watermark, so every window is emitted, the last ones included.
    """
    totals: dict[Window, list[int]] = defaultdict(lambda: [0, 0])
    for event in events:
        at = datetime.strptime(str(event["event_time"]), "%Y-%m-%d %H:%M:%S.%f")
        start = START + WINDOW * ((at - START) // WINDOW)
        entry = totals[(str(event["key"]), start)]
        entry[0] += 1
        entry[1] += int(str(event["value"]))
    return {key: (count, volume) for key, (count, volume) in totals.items()}


def main(
    trade_count: Annotated[int, typer.Option(help="how many trades to produce")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed of the trade stream")] = 7,
) -> None:
    """Run the slice and print the signals as a table, each checked."""
    began = time.monotonic()
    with contextlib.ExitStack() as services:
        with console.status("installing and starting Kafka (KRaft, single node)..."):
            broker = services.enter_context(KafkaService().session())
        console.print(f"[green]✓[/] Kafka at {broker.bootstrap_servers}")
        with console.status("preparing the Flink environment..."):
            flink = services.enter_context(FlinkService().session())
        run(broker, flink, trade_count, seed)
        console.print("stopping services...")
    console.print(f"done in {time.monotonic() - began:.0f}s")


def run(broker: KafkaBroker, flink: FlinkEnv, trade_count: int, seed: int) -> None:
    run_id = time.strftime("%H%M%S")  # a Kafka started by hand may hold earlier runs
    source, sink = f"demo.{run_id}.trades", f"demo.{run_id}.signals"
    create_topics(broker, [source, sink], partitions=2)
    events = trades(trade_count, seed)
    producer = Producer(broker.client_config(**{"enable.idempotence": True}))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"producing {len(events)} trades to {source}", total=len(events))
        for event in events:
            producer.produce(source, key=str(event["key"]), value=json.dumps(event))
            producer.poll(0)
            progress.advance(task)
        producer.flush(30)
    console.print(f"[green]✓[/] produced {len(events)} trades to [bold]{source}[/]")

    with console.status("running the windowed aggregate in a Flink mini-cluster..."):
        started = time.monotonic()
        flink.run_chorus_job(
            "chorus_flink.jobs.windowed_counts",
            {
                "bootstrap_servers": broker.bootstrap_servers,
                "source_topic": source,
                "sink_topic": sink,
                "bounded": True,
            },
            timeout=600,
        )
    console.print(f"[green]✓[/] Flink job finished in {time.monotonic() - started:.0f}s")

    signals = [json.loads(record.value() or b"null") for record in read_topic(broker, sink)]
    expected = expected_windows(events)
    got = {
        (s["key"], datetime.fromisoformat(s["window_start"].replace(" ", "T"))): (
            s["event_count"],
            s["value_sum"],
        )
        for s in signals
    }
    verdicts: Counter[str] = Counter()
    per_symbol: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key in set(expected) | set(got):
        ok = expected.get(key) == got.get(key)
        verdicts["ok" if ok else "mismatch"] += 1
        if not ok:
            console.print(f"[red]✗ {key}: expected {expected.get(key)}, got {got.get(key)}[/]")
        count, volume = got.get(key, (0, 0))
        row = per_symbol[key[0]]
        row[0] += 1
        row[1] += count
        row[2] += volume
        row[3] += ok
    table = Table(title=f"signals on {sink}: per symbol, 10 s event-time windows")
    for column in ("symbol", "windows", "trades", "volume", "checked"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for symbol, (windows, count, volume, good) in sorted(per_symbol.items()):
        mark = "[green]✓[/]" if good == windows else "[red]✗[/]"
        table.add_row(symbol, str(windows), str(count), str(volume), f"{good}/{windows} {mark}")
    console.print(table)
    if verdicts["mismatch"] or len(signals) != len(got):
        console.print(f"[red]✗ {verdicts['mismatch']} windows differ from the expected result[/]")
        sys.exit(1)
    console.print(f"[green]✓[/] all {verdicts['ok']} windows match an independent computation")


if __name__ == "__main__":
    typer.run(main)
