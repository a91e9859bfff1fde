"""``chorus dev up <domain>``: a domain's whole local run, start to report.

1. Kafka: a single-node KRaft broker from the cache (or the one at ``--bootstrap-servers``);
   the run's topics (:func:`chorus_agents.dev.topics.domain_topics`) are created afresh.
2. Each Tool's MCP server (``chorus mcp serve``), until it answers ``tools/list``; then the
   scenario's set-up calls (the trading desk's position).
3. Each Agent's streams as unbounded Flink jobs (a mini-cluster each), checkpointing every
   second, and each Agent as ``chorus agent run`` with its runtime config, all started at
   once; then until each job has completed a checkpoint (all its tasks running) and each
   agent answers ``/readyz``.
4. The scenario's records, fed at ``speed`` times event time, incidents included (none with
   ``quiet``), while :class:`~chorus_agents.dev.live.Observer` reads every topic.
5. The end: the feed done, every agent past the last record of its inputs
   (:mod:`chorus_agents.dev.settle`: an agent in a long model call is not done however
   quiet it is) and nothing new for :data:`QUIET_SECONDS`; or ``seconds`` of wall time, or
   Ctrl-C. The agents get SIGTERM first (they commit their transaction), the observer
   drains, then everything else stops; the report is built from what was seen.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from chorus_api.streams import resolve_stream
from chorus_api.topics import AGENT_CARDS_TOPIC, audit_topic
from rich.console import Console
from rich.live import Live

from chorus_agents.dev.ledgers import LEDGERS, Effect
from chorus_agents.dev.live import FeedProgress, Observer, view
from chorus_agents.dev.manifests import Domain
from chorus_agents.dev.processes import Child, Processes, call_tool
from chorus_agents.dev.report import Injected, Report, build_report
from chorus_agents.dev.scenarios import START, Incident, Plan, Scenario
from chorus_agents.dev.services.base import CACHE, ServiceError, wait_until
from chorus_agents.dev.services.kafka import KafkaBroker, KafkaService, admin, create_topics
from chorus_agents.dev.settle import behind, committed_offsets, readers_of
from chorus_agents.dev.topics import TopicSpec, domain_topics

QUIET_SECONDS = 3.0
"""After the feed, the run ends once every agent has settled and no record arrived on any
topic for this long: three of the jobs' checkpoints (a job's outputs appear with each)."""
DRAIN_SECONDS = 1.0
"""After the agents stop, the observer reads until nothing arrived for this long."""
DRAIN_LIMIT_SECONDS = 10.0
"""At most this long (a stopped run's jobs may still be writing what was fed)."""


@dataclass(frozen=True)
class UpOptions:
    """What ``chorus dev up`` was asked for."""

    domain: Domain
    scenario: Scenario
    quiet: bool = False
    speed: float | None = None
    seconds: float | None = None
    """Wall-clock limit of the run (after start-up)."""
    event_seconds: float | None = None
    keep_running: bool = False
    bootstrap_servers: str | None = None
    live: bool = True


@dataclass
class Run:
    """A finished run: its report, its working directory and the audit records it saw."""

    report: Report
    workdir: Path
    audit: list[dict[str, Any]] = field(default_factory=list)


class Stopper:
    """Ctrl-C (SIGINT) and SIGTERM set :attr:`event` instead of raising in the middle."""

    def __init__(self) -> None:
        self.event = threading.Event()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.event.set()

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def submitted(log: Path) -> bool:
    """Whether a ``chorus_flink.run`` job's output says it was submitted."""
    return "submitted as" in log.read_text(errors="replace")


def running(log: Path) -> bool:
    """Whether a ``chorus_flink.run`` job completed a checkpoint: every task is running.

    A submitted job can still be starting its tasks (a Python UDF's worker takes a while on
    a loaded machine); until then it reads nothing. The mini-cluster's logs are in the
    directory named after the job's log (``logs/<job>/``).
    """
    directory = log.with_suffix("")
    if not directory.is_dir():
        return False
    return any(
        "Completed checkpoint" in f.read_text(errors="replace") for f in directory.glob("*.log")
    )


def recreate_topics(broker: KafkaBroker, topics: tuple[TopicSpec, ...]) -> None:
    """Deletes the run's topics left by an earlier run on this broker, then creates them all.

    The shared AgentCard registry is kept (it is compacted, keyed by agent).
    """
    client = admin(broker)
    existing = set(client.list_topics(timeout=10).topics)
    stale = [t.name for t in topics if t.name in existing and t.name != AGENT_CARDS_TOPIC]
    if stale:
        for future in client.delete_topics(stale, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
        wait_until(
            lambda: not set(stale) & set(client.list_topics(timeout=5).topics),
            what=f"kafka: deleting {len(stale)} topics of an earlier run",
            timeout=60,
        )
    for spec in topics:
        if spec.name == AGENT_CARDS_TOPIC and spec.name in existing:
            continue
        created = False
        deadline = time.monotonic() + 60
        while not created:
            try:
                # The registry is shared: a run of another domain may make it first.
                shared = spec.name == AGENT_CARDS_TOPIC
                create_topics(
                    broker,
                    [spec.name],
                    partitions=spec.partitions,
                    config=spec.config,
                    exist_ok=shared,
                )
                created = True
            except ServiceError:
                if time.monotonic() > deadline:  # "marked for deletion" passes in a moment
                    raise
                time.sleep(1)


def feed(
    broker: KafkaBroker,
    scenario: Scenario,
    plan: Plan,
    speed: float,
    progress: FeedProgress,
    stop: threading.Event,
) -> None:
    """Produces the plan's records at ``speed`` times event time; notes each injection."""
    from confluent_kafka import Producer

    records = list(plan.records())
    progress.total = len(records)
    pending = sorted(plan.incidents, key=lambda i: i.at_seconds)
    producer = Producer(broker.client_config(**{"enable.idempotence": True, "linger.ms": 5}))
    began = time.monotonic()
    for record in records:
        if stop.is_set():
            break
        delay = began + record.offset / speed - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        producer.produce(scenario.topic, key=record.key, value=json.dumps(record.value))
        producer.poll(0)
        now = time.time()
        while pending and record.offset >= pending[0].at_seconds:
            progress.injected.append(Injected(pending.pop(0), now))
        progress.fed += 1
        progress.event_seconds = record.offset
        event_epoch = (START + timedelta(seconds=record.offset)).timestamp()
        progress.fed_at.append((event_epoch, now))
    producer.flush(30)
    progress.injected += [Injected(i, None) for i in pending]
    progress.done = True


def up(
    options: UpOptions,
    console: Console,
    *,
    on_started: Callable[[Processes], None] | None = None,
) -> Run:
    """Runs the domain locally; see the module docstring. Raises ServiceError on failure."""
    domain, scenario = options.domain, options.scenario
    plan = scenario.plan(quiet=options.quiet, seconds=options.event_seconds)
    speed = options.speed or scenario.speed
    namespace = domain.namespace
    topics = domain_topics(domain, extra_inputs=(scenario.topic,))
    signal_topics = sorted(
        {t for a in domain.agents for s in a.spec.streams for t in resolve_stream(s).outputs}
    )
    stopper = Stopper()
    workdir = CACHE / "work" / f"dev-{domain.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(stopper.installed())
        if options.bootstrap_servers:
            broker = KafkaBroker(options.bootstrap_servers, pid=0, log_file="")
        else:
            with console.status("starting Kafka (KRaft, single node; installs once)..."):
                broker = stack.enter_context(KafkaService().session())
        console.print(f"[green]✓[/] Kafka at {broker.bootstrap_servers}")
        recreate_topics(broker, topics)
        console.print(f"[green]✓[/] {len(topics)} topics")
        processes = stack.enter_context(Processes(workdir))
        tools = {t.metadata.name: t for t in domain.tools}
        with console.status("starting the MCP servers..."):
            for tool in domain.tools:
                processes.start_tool(tool, bootstrap=broker.bootstrap_servers)
        console.print(f"[green]✓[/] tools: {', '.join(processes.tool_urls) or 'none'}")
        for call in plan.setup:
            call_tool(processes.tool_urls[call.tool], call.name, call.arguments)
        jobs: list[Child] = []
        if any(a.spec.streams for a in domain.agents):
            from chorus_agents.dev.services.flink import FlinkService

            with console.status("preparing Flink (venv and connector jar; installs once)..."):
                flink = stack.enter_context(FlinkService().session())
            bootstrap = broker.bootstrap_servers
            jobs = [
                job
                for agent in domain.agents
                for job in processes.start_streams(agent, flink, bootstrap, namespace)
            ]
        # The agents start while the jobs do (neither needs the other to be up): the feed
        # waits for both.
        started = [
            processes.start_agent(
                agent,
                bootstrap=broker.bootstrap_servers,
                tools=tools,
                namespace=namespace,
                config_maps=domain.config_maps,
            )
            for agent in domain.agents
        ]
        if jobs:
            with console.status(f"starting {len(jobs)} Flink job(s) in mini-clusters..."):
                for job in jobs:
                    wait_until(
                        partial(submitted, job.log),
                        what=f"{job.name}: job submitted",
                        timeout=240,
                        process=job.process,
                        log=job.log,
                        interval=1.0,
                    )
                for job in jobs:
                    wait_until(
                        partial(running, job.log),
                        what=f"{job.name}: every task running (a first checkpoint)",
                        timeout=240,
                        process=job.process,
                        log=job.log,
                        interval=1.0,
                    )
            console.print(f"[green]✓[/] Flink: {', '.join(j.name for j in jobs)}")
        with console.status(f"starting {len(domain.agents)} agents..."):
            for child, port in started:
                processes.wait_ready(child, port)
        console.print(f"[green]✓[/] agents: {', '.join(a.metadata.name for a in domain.agents)}")
        if on_started is not None:
            on_started(processes)
        observer = Observer(
            broker.client_config(),
            [t.name for t in topics if t.name != AGENT_CARDS_TOPIC],
            signal_topics=signal_topics,
            audit_topic=audit_topic(namespace),
        )
        observer.start()
        from confluent_kafka import KafkaException

        readers = readers_of(domain, namespace)
        client = admin(broker)

        def settled() -> bool:
            try:
                committed = committed_offsets(client, [r.group for r in readers])
            except KafkaException:
                return False  # asked again in half a second
            return not behind(readers, observer.last_seen(), committed)

        progress = FeedProgress()
        feeder = threading.Thread(
            target=feed,
            args=(broker, scenario, plan, speed, progress, stopper.event),
            name="chorus-dev-feed",
            daemon=True,
        )
        began = time.monotonic()
        feeder.start()
        live = Live(console=console, refresh_per_second=2, transient=True) if options.live else None
        with live or contextlib.nullcontext():
            while not stopper.event.wait(0.5):
                elapsed = time.monotonic() - began
                if live is not None:
                    live.update(view(scenario, observer, progress, elapsed=elapsed))
                dead = processes.dead()
                if dead:
                    raise ServiceError(processes.describe_death(dead[0]))
                if options.seconds is not None and elapsed >= options.seconds:
                    break
                if (
                    progress.done
                    and not options.keep_running
                    and observer.quiet_for() >= QUIET_SECONDS
                    and settled()
                ):
                    break
        stopper.event.set()
        feeder.join(timeout=30)
        feed_seconds = time.monotonic() - began
        console.print("stopping the agents (they commit their last transaction)...")
        processes.stop(["agent/"])
        drained_by = time.monotonic() + DRAIN_LIMIT_SECONDS
        while observer.quiet_for() < DRAIN_SECONDS and time.monotonic() < drained_by:
            time.sleep(0.2)
        observer.stop()
        signals, audit = observer.snapshot()
        effects = read_ledger(scenario.domain, plan.incidents, processes.tool_urls)
        report = build_report(
            scenario,
            quiet=options.quiet,
            injected=progress.injected,
            signals=signals,
            audit=audit,
            records_fed=progress.fed,
            feed_seconds=feed_seconds,
            fed_at=progress.fed_at,
            effects=effects,
        )
        console.print("stopping the Flink jobs and MCP servers...")
    return Run(report=report, workdir=workdir, audit=audit)


def read_ledger(
    domain: str, incidents: Sequence[Incident], tool_urls: Mapping[str, str]
) -> list[Effect] | None:
    """The effects in the domain's back end (:mod:`chorus_agents.dev.ledgers`), read through
    its MCP server; ``None`` for a domain without a ledger."""
    ledger = LEDGERS.get(domain)
    if ledger is None:
        return None
    calls = ledger.reads(incidents)
    return ledger.effects([call_tool(tool_urls[c.tool], c.name, c.arguments) for c in calls])


def report_json(report: Report) -> dict[str, Any]:
    return report.to_json()
