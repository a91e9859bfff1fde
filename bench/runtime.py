"""The agent runtime's hot path: a no-op agent over the Kafka binding, against its ceilings.

    .venv/bin/python -m bench.runtime main --runs 3       # about 7 minutes, a private broker
    python3 -m venv /tmp/spy && /tmp/spy/bin/pip install py-spy    # for --profile
    .venv/bin/python -m bench.runtime main --runs 3 --profile /tmp/hotpath \
        --py-spy /tmp/spy/bin/py-spy                      # and where the agent's CPU goes

In one run, side by side (every other run in the reverse order), each server pinned to
core 0 (``os.sched_setaffinity`` in its own process) and driven by one client with
``--inflight`` requests in flight, pinned to core 1; the broker (one node, private to the
bench unless one was started with ``python -m tests.services kafka up``) is not pinned:

- ``agent eos`` / ``agent alo``: an ``AgentHost`` with a no-op executor (it answers every
  message with a message), its delivery settings the defaults (as deployed; ``--delivery``
  changes them), audit and tracing on, exactly-once / at-least-once. The client writes
  pre-encoded ``SendMessage`` records to its inbox and times each until its answer is
  readable (read_committed) on the client's replies topic;
- ``agent eos wide``: the same with ``maxInFlight`` as large as the client's in-flight
  count, so the loop's buffer (four times ``maxInFlight``) never fills and never pauses;
- ``raw plain`` / ``raw txn``: a bare confluent-kafka loop on the same broker (poll a
  batch, produce one answer per record; without transactions, committing offsets
  asynchronously, or with a transaction per batch holding the offsets;
  :func:`bench.runtime_kafka.serve_raw`);
- ``http bare``: a2a-sdk's standard JSON-RPC app with the same no-op executor, in its own
  process (:mod:`bench.runtime_http`), with as many requests in flight;
- ``http agent``: the exactly-once agent's own HTTP gateway (an answer waits for the
  commit that stores its audit records);
- ``http bare untraced``: the bare app without a ``TracerProvider`` (the SDK's own
  spans are then the OpenTelemetry API's no-ops), not run unless named in ``--paths``.

For each path: messages/s, latency (request sent to answer read: with this many in
flight, mostly queueing), CPU seconds of the server process, of the broker and of the
client during the timed part (:class:`~bench.profile_hotpath.Meter`), and, for paths that
write to Kafka, the records written per input, per topic: counted by reading each topic
(read_committed) between its end offsets before and after (the offsets also advance by
one per transaction marker). Issue 16's figure is ``agent eos`` / ``raw plain`` per run,
and the median of those ratios. ``--profile``: :mod:`bench.profile_hotpath`.

This module holds the orchestration: the servers' commands (``agent``, ``raw``), the
paths (:class:`Bench`), the runs, the tables and the per-run ratios (``main``).
:mod:`bench.runtime_kafka` holds the Kafka side: the raw loop, the client that drives
requests and reads the answers, and the records per input counted by end offsets;
:mod:`bench.runtime_http` the bare HTTP app and the HTTP client; :mod:`bench.profile_hotpath`
the CPU meter and the profile.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bench.runtime_kafka import KafkaClient, drive_kafka, serve_raw

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console(width=150)  # wide tables also in a log
REPO = Path(__file__).resolve().parents[1]
SERVER_CORE, CLIENT_CORE = 0, 1
PATHS = (
    "agent eos",
    "raw plain",
    "http bare",
    "agent eos wide",
    "raw txn",
    "agent alo",
    "http agent",
)
EXTRA_PATHS = ("http bare untraced",)
"""Run only when named in ``--paths``."""
PR_SET_PTRACER, PR_SET_PTRACER_ANY = 0x59616D61, -1


def vmrss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


# --- the servers (child processes) ---------------------------------------------------------


def agent_document(
    bootstrap: str, ns: str, guarantee: str, delivery: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The no-op agent's runtime config: every delivery setting the default (as deployed)
    but the guarantee and what ``delivery`` sets (``--delivery`` of ``main``)."""
    return {
        "agent": {"namespace": ns, "name": "noop"},
        "kafka": {"bootstrapServers": bootstrap},
        "handler": "bench.runtime:NoOpExecutor",
        "http": {"host": "127.0.0.1", "port": 0},
        "instance": "bench-0",
        "skills": [{"id": "noop", "name": "No-op", "tags": ["bench"]}],
        "delivery": {**(delivery or {}), "guarantee": guarantee},
    }


def noop_executor() -> Any:
    from a2a.helpers import new_text_message
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue

    class NoOp(AgentExecutor):
        """Answers every message with a message: the cheapest A2A answer."""

        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            await event_queue.enqueue_event(
                new_text_message("ok", context_id=context.context_id or "")
            )

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            return None

    return NoOp


def __getattr__(name: str) -> Any:  # the handler path names NoOpExecutor lazily
    if name == "NoOpExecutor":
        return noop_executor()
    raise AttributeError(name)


def allow_profiler() -> None:
    """Lets any process of this user attach (Yama's ptrace_scope 1 allows only ancestors)."""
    if os.environ.get("CHORUS_BENCH_PROFILE") and sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0)


async def _serve_agent(bootstrap: str, ns: str, guarantee: str, delivery: str, kafka: str) -> None:
    from chorus_agents.host import AgentHost
    from chorus_api.runtime import parse_runtime_config

    pin(SERVER_CORE)
    allow_profiler()
    config = parse_runtime_config(agent_document(bootstrap, ns, guarantee, json.loads(delivery)))
    settings = {**json.loads(kafka), "bootstrap.servers": bootstrap}
    host = AgentHost(config, noop_executor()(), kafka_config=settings)
    await host.start()
    await asyncio.sleep(2.0)  # idle: what one waiting agent costs
    print(json.dumps({"http": host.http_url, "rss_kib": vmrss_kib(os.getpid())}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await host.stop()


@app.command(hidden=True)
def agent(bootstrap: str, ns: str, guarantee: str, delivery: str = "{}", kafka: str = "{}") -> None:
    """A pinned no-op agent (run by ``main``); prints its URL and idle RSS, stops on stdin."""
    asyncio.run(_serve_agent(bootstrap, ns, guarantee, delivery, kafka))


@app.command(hidden=True)
def raw(bootstrap: str, inbox: str, transactions: bool = False) -> None:
    """The ceiling (run by ``main``): a bare consume -> produce loop, pinned to one core."""
    pin(SERVER_CORE)
    serve_raw(bootstrap, inbox, transactions=transactions)


class Child:
    """A server process (``python -m module *args``); :meth:`stop` closes its stdin and waits."""

    def __init__(self, module: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} {args[:1]}: exited with {self.process.wait()}")
        self.info: dict[str, Any] = json.loads(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the paths -------------------------------------------------------------------------------


class Bench:
    """One broker's measurements; every method measures one path once."""

    def __init__(
        self,
        broker: Any,
        *,
        requests: int,
        raw_requests: int,
        http_requests: int,
        inflight: int,
        profile: Path | None,
        py_spy: str,
        profile_requests: int,
        delivery: dict[str, Any] | None = None,
        kafka: dict[str, str] | None = None,
    ) -> None:
        self.broker = broker
        self.delivery, self.kafka = delivery or {}, kafka or {}
        self.bootstrap: str = broker.bootstrap_servers
        self.requests, self.raw_requests = requests, raw_requests
        self.http_requests, self.inflight = http_requests, inflight
        self.profile, self.py_spy, self.profile_requests = profile, py_spy, profile_requests
        self.run = 0
        self.client = KafkaClient(broker, inflight)

    def agent(self, guarantee: str, *, http: bool = False, wide: bool = False) -> dict[str, Any]:
        """The no-op agent; ``wide``: ``maxInFlight`` as many as the client keeps in
        flight, so the loop's buffer (four times that) never fills and never pauses."""
        from chorus_api.runtime import parse_runtime_config

        from tests.agents.conftest import create_agent_topics

        ns = f"b{uuid.uuid4().hex[:8]}"
        delivery = {**self.delivery, **({"maxInFlight": self.inflight} if wide else {})}
        config = parse_runtime_config(agent_document(self.bootstrap, ns, guarantee, delivery))
        create_agent_topics(self.broker, config)
        profiling = (
            self.profile is not None and guarantee == "exactly-once" and not http and not wide
        )
        env = {"CHORUS_BENCH_PROFILE": "1"} if profiling else {}
        kafka = json.dumps(self.kafka)
        args = (
            *("agent", self.bootstrap, ns, guarantee),
            *("--delivery", json.dumps(delivery), "--kafka", kafka),
        )
        child = Child("bench.runtime", *args, env=env)
        topics = config.topics
        roles = {topics.tasks: "task", topics.audit: "audit", topics.dead_letter: "dead letter"}
        threads: dict[int, tuple[str, float]] = {}
        try:
            if http:
                from bench.runtime_http import timed_http

                figures = timed_http(self, child, roles)
            else:
                figures = self.client.timed(
                    child.pid, topics.inbox, self.requests, roles, warm=1000, threads=threads
                )
            figures["rss_mib"] = child.info["rss_kib"] / 1024
            if profiling:
                figures["profile"] = self.profiled(child, topics.inbox, threads)
        finally:
            child.stop()
        return figures

    def profiled(
        self, child: Child, inbox: str, threads: dict[int, tuple[str, float]]
    ) -> dict[str, object]:
        """One more drive under py-spy; with the timed drive's CPU per thread, the profile
        (:mod:`bench.profile_hotpath`)."""
        from bench.profile_hotpath import Profile, Sampler

        assert self.profile is not None
        output = self.profile / f"run{self.run}.txt"
        replies = self.client.replies()
        with Sampler(child.pid, output, py_spy=self.py_spy) as sampler:
            drive_kafka(self.bootstrap, inbox, replies, self.profile_requests, self.inflight)
        result = Profile(child.pid, self.requests, threads, sampler.samples).to_json()
        output.with_suffix(".json").write_text(json.dumps(result, indent=2))
        return result

    def raw(self, transactions: bool) -> dict[str, Any]:
        from tests.services.kafka import create_topics

        inbox = f"bench.raw.{uuid.uuid4().hex[:8]}"
        create_topics(self.broker, [inbox], partitions=3)
        flag = ["--transactions"] if transactions else []
        child = Child("bench.runtime", "raw", self.bootstrap, inbox, *flag)
        try:
            requests = self.requests if transactions else self.raw_requests
            return self.client.timed(child.pid, inbox, requests, {}, warm=2000)
        finally:
            child.stop()

    def warm_up(self) -> None:
        """A fresh broker's JIT and transaction coordinator warmed, nothing measured."""
        from tests.services.kafka import create_topics

        for transactions, requests in ((False, 20_000), (True, 3_000)):
            inbox = f"bench.raw.{uuid.uuid4().hex[:8]}"
            create_topics(self.broker, [inbox], partitions=3)
            flag = ["--transactions"] if transactions else []
            child = Child("bench.runtime", "raw", self.bootstrap, inbox, *flag)
            try:
                drive_kafka(self.bootstrap, inbox, self.client.replies(), requests, self.inflight)
            finally:
                child.stop()

    def measure(self, path: str) -> dict[str, Any]:
        if path == "agent eos":
            return self.agent("exactly-once")
        if path == "agent eos wide":
            return self.agent("exactly-once", wide=True)
        if path == "agent alo":
            return self.agent("at-least-once")
        if path == "http agent":
            return self.agent("exactly-once", http=True)
        if path == "raw plain":
            return self.raw(transactions=False)
        if path == "raw txn":
            return self.raw(transactions=True)
        if path in ("http bare", "http bare untraced"):
            from bench.runtime_http import bare

            return bare(self, tracing=path == "http bare")
        raise ValueError(f"unknown path {path!r}")


# --- the report ------------------------------------------------------------------------------


def figure(figures: dict[str, Any], name: str) -> float:
    """A figure of one path in one run: a measured one, or CPU ms per message of
    ``cpu:<process>+<process>``."""
    if name.startswith("cpu:"):
        spent = sum(float(figures[f"{part}_cpu_s"]) for part in name[4:].split("+"))
        return 1000 * spent / float(figures["requests"])
    return float(figures.get(name, 0.0))


def report(all_runs: list[dict[str, dict[str, Any]]], paths: list[str], inflight: int) -> None:
    """Per path, each run's figures; then the per-run ratios of issue 16 and their medians."""
    table = Table(title=f"one core, {inflight} in flight; each run's figure")
    columns = {
        "msgs/s": ("rate", ",.0f"),
        "p50 ms": ("p50_ms", ".0f"),
        "p99 ms": ("p99_ms", ".0f"),
        "server CPU ms/msg": ("cpu:server", ".3f"),
        "broker": ("cpu:broker", ".3f"),
        "client": ("cpu:client", ".3f"),
        "records/input": ("records/input", ".2f"),
    }
    table.add_column("path")
    for column in columns:
        table.add_column(column, justify="right")
    for path in paths:
        cells = [
            ", ".join(format(figure(run[path], name), form) for run in all_runs)
            for name, form in columns.values()
        ]
        table.add_row(path, *cells)
    console.print(table)
    for path in paths:
        roles = sorted({k for run in all_runs for k in run[path] if k.endswith("/input")})
        if roles:
            medians = [
                f"{role} {statistics.median(figure(run[path], role) for run in all_runs):.2f}"
                for role in roles
            ]
            console.print(f"{path}, medians: {', '.join(medians)}")

    def ratios(top: str, bottom: str, name: str, below: str | None = None) -> None:
        if top not in paths or bottom not in paths:
            return
        per_run = [figure(run[top], name) / figure(run[bottom], below or name) for run in all_runs]
        console.print(
            f"{name} {top} / {bottom}: {', '.join(f'{r:.3f}' for r in per_run)} "
            f"(median {statistics.median(per_run):.3f})"
        )

    ratios("agent eos", "raw plain", "rate")
    ratios("agent eos wide", "raw plain", "rate")
    ratios("agent eos", "raw txn", "rate")
    ratios("agent alo", "raw plain", "rate")
    ratios("agent eos", "http bare", "rate")
    ratios("agent eos", "http bare untraced", "rate")
    ratios("agent eos", "raw plain", "cpu:server+broker")
    ratios("agent eos wide", "raw plain", "cpu:server+broker")
    ratios("http bare", "agent eos", "cpu:server", "cpu:server+broker")
    ratios("http bare untraced", "agent eos", "cpu:server", "cpu:server+broker")


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="runs; ratios are per run, then their median")] = 3,
    requests: Annotated[
        int, typer.Option(help="requests per agent and raw txn measurement")
    ] = 6000,
    raw_requests: Annotated[int, typer.Option(help="requests per raw plain measurement")] = 30000,
    http_requests: Annotated[int, typer.Option(help="requests per HTTP measurement")] = 3000,
    inflight: Annotated[int, typer.Option(help="requests in flight, every path")] = 256,
    paths: Annotated[str, typer.Option(help="comma-separated paths")] = ",".join(PATHS),
    profile: Annotated[
        Path | None, typer.Option(help="py-spy the eos agent in one more drive; files here")
    ] = None,
    py_spy: Annotated[
        str, typer.Option(help="the py-spy executable (pip install py-spy)")
    ] = "py-spy",
    profile_requests: Annotated[int, typer.Option(help="requests of the profiled drive")] = 8000,
    output: Annotated[Path | None, typer.Option(help="every figure as JSON")] = None,
    delivery: Annotated[
        list[str] | None,
        typer.Option(help="an agent delivery setting, KEY=JSON (maxInFlight=1000); repeatable"),
    ] = None,
    kafka: Annotated[
        list[str] | None,
        typer.Option("--kafka", "-X", help="an extra librdkafka setting of the agent, KEY=VALUE"),
    ] = None,
) -> None:
    """Runs every path ``runs`` times, side by side, alternating the order; prints per run."""
    sys.path.insert(0, str(REPO))
    from chorus_api.topics import AGENT_CARDS_TOPIC

    from tests.agents.conftest import create_missing_topics
    from tests.services.kafka import KafkaService

    chosen = [p.strip() for p in paths.split(",") if p.strip()]
    known = (*PATHS, *EXTRA_PATHS)
    unknown = set(chosen) - set(known)
    if unknown:
        raise typer.BadParameter(f"unknown path(s) {sorted(unknown)}; known: {', '.join(known)}")
    pin(CLIENT_CORE)
    all_runs: list[dict[str, dict[str, Any]]] = []
    with KafkaService().session() as broker:
        create_missing_topics(broker, [AGENT_CARDS_TOPIC], config={"cleanup.policy": "compact"})
        bench = Bench(
            broker,
            requests=requests,
            raw_requests=raw_requests,
            http_requests=http_requests,
            inflight=inflight,
            profile=profile,
            py_spy=py_spy,
            profile_requests=profile_requests,
            delivery={k: json.loads(v) for k, v in (d.split("=", 1) for d in delivery or [])},
            kafka=dict(setting.split("=", 1) for setting in kafka or []),
        )
        bench.warm_up()
        for run in range(runs):
            bench.run = run + 1
            order = chosen if run % 2 == 0 else chosen[::-1]
            console.print(f"run {run + 1} of {runs}: {', '.join(order)}")
            results: dict[str, dict[str, Any]] = {}
            for path in order:
                results[path] = bench.measure(path)
                console.print(f"  {path}: {results[path]['rate']:,.0f} msgs/s")
            all_runs.append(results)
    report(all_runs, chosen, inflight)
    if profile is not None and "agent eos" in chosen:
        from bench.profile_hotpath import Profile, table

        found = [Profile.from_json(r["agent eos"]["profile"]) for r in all_runs]
        console.print(table(found, "agent eos, where the CPU goes"))
    document = json.dumps({"runs": all_runs}, indent=1)
    if output is not None:
        output.write_text(document)
    console.print_json(document)


if __name__ == "__main__":
    app()
