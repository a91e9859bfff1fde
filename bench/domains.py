"""Figures of ``chorus dev up <domain>`` (docs/benchmarks.md, "Domains, local run").

    .venv/bin/python -m bench.domains                  # every domain with a deploy dir
    .venv/bin/python -m bench.domains trading support  # some
    .venv/bin/python -m bench.domains --model-latency 2  # scripted models at a model's pace

With ``--model-latency MEDIAN[,SIGMA]`` every scripted model takes a lognormal time per
turn (:mod:`chorus_agents.dev.model_speed`). The table also counts the model calls, the
model's decisions acted on and declined (the report's), and the effects in the back end's
own records with the actions among them carried out twice (read through the MCP servers
at the end of the run, :mod:`chorus_agents.dev.ledgers`; the audit is not asked).

For each domain, one incident run at the domain's default speed: the incident-to-action
latency (p50, p99 over the run's incidents: one per domain, so p50 = p99 = that run's), the
event rate fed and kept up with (records fed / feed time: the feed stays on its schedule,
so this is the scenario's rate, a lower bound of what the run sustains), and the total RSS
of the local run: the sum of VmRSS of every process of the run (Kafka, the MCP servers, the
Flink drivers and their mini-cluster JVMs, the agents, and this process), sampled each
second, the peak reported. One Kafka (started here, or the one already up) serves every run.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.model_speed import parse_model_latency, with_model_latency
from chorus_agents.dev.processes import Processes
from chorus_agents.dev.scenarios import SCENARIOS, scenario
from chorus_agents.dev.services.base import REPO
from chorus_agents.dev.services.kafka import KafkaService
from chorus_agents.dev.up import UpOptions, up
from rich.console import Console
from rich.table import Table

console = Console()


def group_rss_kb(groups: set[int]) -> int:
    """The summed VmRSS (kB) of every process whose process group is in ``groups``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgid = int(stat.rsplit(")", 1)[1].split()[2])
            if pgid not in groups:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


class RssSampler:
    """Samples the run's process groups every second; keeps the peak."""

    def __init__(self) -> None:
        self.groups: set[int] = {os.getpgid(0)}
        self.peak_kb = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def attach(self, processes: Processes) -> None:
        self.groups |= {c.process.pid for c in processes.children}

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self.peak_kb = max(self.peak_kb, group_rss_kb(self.groups))


def measure(
    domain: str, bootstrap: str, kafka_pid: int, latency: dict[str, Any] | None = None
) -> dict[str, Any]:
    loaded = load_domain(REPO / "agents" / domain / "deploy", name=domain)
    if latency is not None:
        loaded = with_model_latency(loaded, latency)
    sampler = RssSampler()
    sampler.groups.add(kafka_pid)
    sampler.thread.start()

    def started(processes: Processes) -> None:
        sampler.attach(processes)

    options = UpOptions(
        domain=loaded, scenario=scenario(domain), bootstrap_servers=bootstrap, live=False
    )
    run = up(options, Console(quiet=True), on_started=started)
    sampler.stop.set()
    report = run.report
    action = report.latency.get("incident_to_action", {})
    decisions = report.model_decisions.values()
    return {
        "domain": domain,
        "ok": report.ok,
        "action_p50_s": action.get("p50"),
        "action_p99_s": action.get("p99"),
        "records_per_s": round(report.records_fed / max(report.feed_seconds, 1e-9), 1),
        "rss_mb": round(sampler.peak_kb / 1024),
        "model_calls": sum(1 for r in run.audit if r.get("kind") == "model.call"),
        "acted": sum(d["acted"] for d in decisions),
        "declined": sum(d["declined"] for d in decisions),
        "effects": report.effects,
        "done_twice": sum(len(ids) - 1 for ids in report.duplicate_effects.values()),
        "report": report.to_json(),
    }


def main(
    domains: Annotated[list[str] | None, typer.Argument(help="Default: every domain.")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Also write the rows, each run's report included, as JSON.")
    ] = None,
    model_latency: Annotated[
        str | None, typer.Option(help="Scripted models at a model's pace: MEDIAN[,SIGMA] s.")
    ] = None,
) -> None:
    """One incident run per domain; prints a table of the figures."""
    chosen = domains or [d for d in SCENARIOS if (REPO / "agents" / d / "deploy").is_dir()]
    latency = parse_model_latency(model_latency) if model_latency is not None else None
    rows = []
    with KafkaService().session() as broker:  # the Kafka the run would start, counted in RSS
        for domain in chosen:
            console.print(f"running {domain}...")
            rows.append(measure(domain, broker.bootstrap_servers, broker.pid, latency))
    table = Table(
        "domain",
        "ok",
        "action p50 (s)",
        "action p99 (s)",
        "records/s",
        "RSS (MB)",
        "model calls",
        "acted / declined",
        "back-end effects",
        "done twice",
    )
    for row in rows:
        table.add_row(
            row["domain"],
            str(row["ok"]),
            str(row["action_p50_s"]),
            str(row["action_p99_s"]),
            str(row["records_per_s"]),
            str(row["rss_mb"]),
            str(row["model_calls"]),
            f"{row['acted']} / {row['declined']}",
            str(row["effects"]),
            str(row["done_twice"]),
        )
    console.print(table)
    if output is not None:
        output.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
