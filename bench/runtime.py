"""The agent runtime's hot path: a no-op agent over the Kafka binding, against its ceilings.

    .venv/bin/python -m bench.runtime main --runs 3

In one run, side by side, each server pinned to one core (``os.sched_setaffinity`` in
its own process) and driven by one client with many requests in flight (the client
pinned to the other core):

- ``kafka eos`` / ``kafka alo``: an ``AgentHost`` with a no-op executor (it answers
  every message with a message), exactly-once (one transaction per polled batch) and
  at-least-once; the client writes pre-encoded ``SendMessage`` records to its inbox and
  times each until its answer is readable (read_committed) on the client's replies topic;
- ``raw txn`` / ``raw plain``: the ceiling, a bare confluent-kafka loop on the same
  broker (poll a batch, produce one answer per record; with a transaction per batch
  holding the offsets, or without);
- ``http``: the same agent through a2a-sdk's standard JSON-RPC HTTP server (the
  gateway's ``DefaultRequestHandler``), driven by httpx.

Figures are medians over ``--runs``; the RSS is VmRSS of one idle agent process.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()
REPO = Path(__file__).resolve().parents[1]
SERVER_CORE, CLIENT_CORE = 0, 1


def vmrss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


# --- the servers (child processes) ---------------------------------------------------------


def agent_document(bootstrap: str, ns: str, guarantee: str) -> dict[str, Any]:
    return {
        "agent": {"namespace": ns, "name": "noop"},
        "kafka": {"bootstrapServers": bootstrap},
        "handler": "bench.runtime:NoOpExecutor",
        "http": {"host": "127.0.0.1", "port": 0},
        "instance": "bench-0",
        "skills": [{"id": "noop", "name": "No-op", "tags": ["bench"]}],
        "delivery": {"guarantee": guarantee, "maxBatch": 500, "maxInFlight": 1000},
    }


def _noop_executor() -> Any:
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
        return _noop_executor()
    raise AttributeError(name)


async def _serve_agent(bootstrap: str, ns: str, guarantee: str) -> None:
    from chorus_agents.host import AgentHost
    from chorus_api.runtime import parse_runtime_config

    pin(SERVER_CORE)
    config = parse_runtime_config(agent_document(bootstrap, ns, guarantee))
    host = AgentHost(config, _noop_executor()(), kafka_config={"bootstrap.servers": bootstrap})
    await host.start()
    await asyncio.sleep(2.0)  # idle: what one waiting agent costs
    print(json.dumps({"http": host.http_url, "rss_kib": vmrss_kib(os.getpid())}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await host.stop()


@app.command(hidden=True)
def agent(bootstrap: str, ns: str, guarantee: str) -> None:
    """A pinned no-op agent (run by ``main``); prints its URL and idle RSS, stops on stdin."""
    asyncio.run(_serve_agent(bootstrap, ns, guarantee))


@app.command(hidden=True)
def raw(bootstrap: str, inbox: str, transactions: bool = False) -> None:
    """The ceiling (run by ``main``): a bare consume -> produce loop, pinned to one core."""
    import select

    from confluent_kafka import Consumer, Producer

    pin(SERVER_CORE)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
    }
    if transactions:
        settings["transactional.id"] = f"bench-raw-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings)
    if transactions:
        producer.init_transactions(30)
    consumer.subscribe([inbox])
    print(json.dumps({"ready": True}), flush=True)
    answer = b'{"jsonrpc":"2.0","id":"x","result":{"message":{"parts":[{"text":"ok"}]}}}'
    while not select.select([sys.stdin], [], [], 0)[0]:
        first = consumer.poll(0.1)
        if first is None:
            continue
        batch = [first, *consumer.consume(499, 0)]
        if transactions:
            producer.begin_transaction()
        for message in batch:
            if message.error() is not None:
                continue
            headers: dict[str, Any] = dict(message.headers() or [])
            producer.produce(
                bytes(headers["chorus-reply-to"]).decode(),
                key=message.key(),
                value=answer,
                headers=[("chorus-correlation-id", headers["chorus-correlation-id"])],
            )
        if transactions:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(30)
        else:
            producer.poll(0)
            consumer.commit(asynchronous=True)
    producer.flush(10)
    consumer.close()


class Child:
    """A server process; :meth:`stop` closes its stdin and waits."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.runtime", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.runtime {args[0]}: exited with {self.process.wait()}")
        self.info: dict[str, Any] = json.loads(line)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the clients -----------------------------------------------------------------------------


def drive_kafka(
    bootstrap: str, inbox: str, replies: str, requests: int, inflight: int
) -> dict[str, float]:
    """Sends ``requests`` SendMessage records, at most ``inflight`` unanswered; times each."""
    from a2a.helpers import new_text_message
    from a2a.types.a2a_pb2 import Role, SendMessageRequest
    from chorus_agents.binding import codec
    from confluent_kafka import Consumer, Producer, TopicPartition

    records = []
    for i in range(requests):
        text = new_text_message(f"hello {i}", role=Role.ROLE_USER, context_id=f"c{i % 64}")
        records.append(
            codec.encode_request(
                "SendMessage",
                SendMessageRequest(message=text),
                topic=inbox,
                request_id=f"r{i}",
                reply_to=replies,
                sender="bench/client",
            )
        )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-client-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 5,
        }
    )
    partitions = consumer.list_topics(replies, timeout=10).topics[replies].partitions
    consumer.assign([TopicPartition(replies, p, 0) for p in partitions])
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    index = 0
    started = time.perf_counter()
    deadline = time.monotonic() + 180
    while len(latencies) < requests:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{inbox}: {len(latencies)} of {requests} answered in 180 s")
        while index < requests and len(sent) < inflight:
            record = records[index]
            producer.produce(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
            sent[f"r{index}".encode()] = time.perf_counter()
            index += 1
        producer.poll(0)
        for message in consumer.consume(1000, 0.002):
            if message.error() is not None:
                continue
            found: dict[str, Any] = dict(message.headers() or [])
            correlation = found.get("chorus-correlation-id")
            begun = sent.pop(bytes(correlation), None) if correlation is not None else None
            if begun is not None:
                latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    consumer.close()
    return summary(requests / elapsed, latencies)


async def drive_http(url: str, requests: int, inflight: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(i: int) -> None:
            body = {
                "jsonrpc": "2.0",
                "id": i,
                "method": "SendMessage",
                "params": {
                    "message": {
                        "messageId": f"m{i}",
                        "role": "ROLE_USER",
                        "parts": [{"text": f"hello {i}"}],
                    }
                },
            }
            begun = time.perf_counter()
            for attempt in range(3):  # a kept-alive connection the server just closed
                try:
                    response = await client.post(url, json=body, headers={"A2A-Version": "1.0"})
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            answer = response.json()
            if "result" not in answer:
                raise RuntimeError(f"http: {answer}")
            latencies.append(time.perf_counter() - begun)

        queue = iter(range(requests))

        async def worker() -> None:
            for i in queue:
                await one(i)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - started
    return summary(requests / elapsed, latencies)


def summary(rate: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rate": rate,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


# --- one run ---------------------------------------------------------------------------------


def one_run(broker: Any, requests: int, http_requests: int, inflight: int) -> dict[str, Any]:
    from chorus_api.topics import AGENT_CARDS_TOPIC

    from tests.agents.conftest import create_agent_topics, create_missing_topics
    from tests.services.kafka import create_topics

    bootstrap = broker.bootstrap_servers
    create_missing_topics(broker, [AGENT_CARDS_TOPIC], config={"cleanup.policy": "compact"})
    results: dict[str, Any] = {}

    def client_replies() -> str:
        from chorus_api.topics import replies_topic

        name = replies_topic(f"b{uuid.uuid4().hex[:8]}", "client")  # what agents answer to
        create_topics(broker, [name], partitions=3)
        return name

    for label, guarantee in (("kafka eos", "exactly-once"), ("kafka alo", "at-least-once")):
        from chorus_api.runtime import parse_runtime_config

        ns = f"b{uuid.uuid4().hex[:8]}"
        config = parse_runtime_config(agent_document(bootstrap, ns, guarantee))
        create_agent_topics(broker, config)
        child = Child("agent", bootstrap, ns, guarantee)
        try:
            warm = client_replies()
            drive_kafka(bootstrap, config.topics.inbox, warm, 500, inflight)
            results[label] = drive_kafka(
                bootstrap, config.topics.inbox, client_replies(), requests, inflight
            )
            results[label]["rss_mib"] = child.info["rss_kib"] / 1024
            if guarantee == "exactly-once":
                asyncio.run(drive_http(child.info["http"], 100, 8))  # warm up
                results["http"] = asyncio.run(
                    drive_http(child.info["http"], http_requests, min(inflight, 32))
                )
        finally:
            child.stop()

    for label, transactions in (("raw txn", True), ("raw plain", False)):
        inbox = f"bench.raw.{uuid.uuid4().hex[:8]}"
        create_topics(broker, [inbox], partitions=3)
        child = Child("raw", bootstrap, inbox, *(["--transactions"] if transactions else []))
        try:
            drive_kafka(bootstrap, inbox, client_replies(), 500, inflight)
            results[label] = drive_kafka(bootstrap, inbox, client_replies(), requests, inflight)
        finally:
            child.stop()
    return results


@app.command()
def main(
    runs: Annotated[int, typer.Option(help="runs; figures are medians")] = 3,
    requests: Annotated[int, typer.Option(help="requests per Kafka measurement")] = 5000,
    http_requests: Annotated[int, typer.Option(help="requests per HTTP measurement")] = 1500,
    inflight: Annotated[int, typer.Option(help="requests in flight")] = 256,
) -> None:
    """Runs every measurement ``runs`` times, side by side, and prints the medians."""
    sys.path.insert(0, str(REPO))
    from tests.services.kafka import KafkaService

    pin(CLIENT_CORE)
    with KafkaService().session() as broker:
        all_runs = []
        for run in range(runs):
            console.print(f"run {run + 1} of {runs}")
            all_runs.append(one_run(broker, requests, http_requests, inflight))
    labels = ["kafka eos", "kafka alo", "raw txn", "raw plain", "http"]
    median = {
        label: {
            key: statistics.median(r[label][key] for r in all_runs) for key in all_runs[0][label]
        }
        for label in labels
    }
    table = Table(title=f"agent runtime, one core, {inflight} in flight (medians of {runs})")
    for column in ("path", "msgs/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for label in labels:
        m = median[label]
        table.add_row(label, f"{m['rate']:,.0f}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}")
    console.print(table)
    eos, alo = median["kafka eos"]["rate"], median["kafka alo"]["rate"]
    console.print(
        f"eos / raw txn = {eos / median['raw txn']['rate']:.2f}, "
        f"alo / raw plain = {alo / median['raw plain']['rate']:.2f}, "
        f"eos / http = {eos / median['http']['rate']:.1f}x, "
        f"idle agent RSS = {median['kafka eos']['rss_mib']:.0f} MiB"
    )
    console.print_json(json.dumps({"runs": all_runs}))


if __name__ == "__main__":
    app()
