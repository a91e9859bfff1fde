"""An echo agent run as ``chorus agent run`` (a real subprocess), and readers of what it
writes: the runtime tier's tests start, kill and replace it.

The agent handles every record of its subscribed topic ``<ns>.numbers`` by waiting the
record's latency (most instant, some up to 1.5 s, a few 8 s or longer: far beyond the rest, so
later records of their partitions finish first) and publishing an echo to
``<ns>.echoes``. Tests swap the handler for their own through ``EchoAgent.document``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml
from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_api.runtime import parse_runtime_config
from confluent_kafka import Consumer, IsolationLevel, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # documented, not re-exported

from tests.agents.conftest import create_agent_topics, create_missing_topics, namespace

ROOT = Path(__file__).resolve().parents[2]
INPUTS = 2_000
KEYS = 16
PARTITIONS = 3
PAD = "x" * 4_000
"""Each echo's padding: bigger transactions stay open long enough to be killed in."""


LONG_S = "CHORUS_TEST_LONG_S"
"""The agent's environment variable for the latency of the one-in-1,000 input (8 s)."""


def latency(n: int, long: float = 8.0) -> float:
    """Input ``n``'s handling time: most instant, 12 % up to 1.5 s, one in 1,000 ``long``."""
    if n % 1000 == 100:
        return long
    draw = random.Random(n).random()
    return 0.0 if draw < 0.88 else 0.05 + (draw - 0.88) / 0.12 * 1.45


class SlowEchoHandler(Handler):
    """Waits the input's latency, then publishes its value to the agent's publish topic."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        n = event.value["n"]
        await asyncio.sleep(latency(n, float(os.environ.get(LONG_S, "8"))))
        ctx.publish(
            event.topic.replace(".numbers", ".echoes"),
            {"n": n, "pad": PAD},
            key=event.key,
        )


class Reader(Protocol):
    count: int

    def poll(self) -> int: ...


def settle(reader: Reader, quiet: float = 1.0) -> int:
    """Polls ``reader`` until its ``count`` stayed the same for ``quiet`` seconds (a
    loaded machine can be slow to answer a fetch: a few empty polls prove nothing)."""
    count, since = reader.count, time.monotonic()
    while time.monotonic() - since < quiet:
        reader.poll()
        if reader.count != count:
            count, since = reader.count, time.monotonic()
    return count


def read_beyond(reader: Reader, count: int, timeout: float = 30) -> int:
    """Polls ``reader`` until it has read more than ``count`` records (or the time is
    up); returns its count. The aborted records' proof: read uncommitted, more than a
    committed reader holds."""
    deadline = time.monotonic() + timeout
    while reader.count <= count and time.monotonic() < deadline:
        reader.poll()
    return reader.count


def aborted(committed: Reader, uncommitted: Reader) -> int:
    """Records the uncommitted reader reads that the committed one (read to its end) does
    not: those written in transactions that were aborted. Closes neither."""
    settle(committed)
    return read_beyond(uncommitted, committed.count) - committed.count


class EchoReader:
    """Reads the echo topic on from where it stopped, committed or not."""

    def __init__(
        self,
        kafka: Any,
        topic: str,
        *,
        committed: bool,
        partitions: int = PARTITIONS,
        raw: bool = False,
    ) -> None:
        self.consumer = Consumer(
            kafka.client_config(
                **{
                    "group.id": f"reader-{topic}-{committed}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed" if committed else "read_uncommitted",
                }
            )
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.echoes: list[tuple[str, int]] = []
        self.raw = raw
        self.records: list[Any] = []
        """With ``raw``: the records themselves (dead letters), not echoes."""
        self.count = 0
        """Records read."""

    def poll(self) -> int:
        for message in self.consumer.consume(500, 0.05):
            error = message.error()
            if error is None:
                self.count += 1
            if error is None and self.raw:
                self.records.append(message)
            elif error is None:
                key = (message.key() or b"").decode()
                self.echoes.append((key, json.loads(message.value() or b"")["n"]))
            elif error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(error.str())
        return len(self.echoes)

    def settle(self, quiet: float = 1.0) -> int:
        """Reads until nothing new came for ``quiet`` seconds; returns the echo count."""
        settle(self, quiet)
        return len(self.echoes)

    def close(self) -> None:
        self.consumer.close()


class OpenTransactions:
    """Whether the echo topic has records written and not yet committed, right now: its
    high watermark (read uncommitted) is past its last stable offset (read committed)."""

    def __init__(self, kafka: Any, topic: str) -> None:
        self.admin = AdminClient(kafka.client_config())
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def _ends(self, level: IsolationLevel) -> list[int]:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = self.admin.list_offsets(
            dict.fromkeys(self.partitions, latest), isolation_level=level
        )
        return [futures[tp].result().offset for tp in self.partitions]

    def stable(self) -> list[int]:
        return self._ends(IsolationLevel.READ_COMMITTED)

    def high(self) -> list[int]:
        return self._ends(IsolationLevel.READ_UNCOMMITTED)

    def open_beyond(self, stable: list[int]) -> bool:
        """A transaction with records is open, on a partition whose stable offset moved
        past ``stable`` (so not the one an earlier kill left behind). The high watermark
        is read first: a stable offset read after it and still below it is a transaction
        open at the later read, the moment closest to the kill that follows."""
        high = self._ends(IsolationLevel.READ_UNCOMMITTED)
        committed = self.stable()
        return any(h > c and c > s for h, c, s in zip(high, committed, stable, strict=True))


def kill_when(
    agent: EchoAgent,
    now: Callable[[], bool],
    between: Callable[[], object],
    timeout: float = 90,
) -> None:
    """SIGKILLs the agent at a moment when ``now()`` holds.

    The process is stopped (SIGSTOP) before each look, so what the look sees is still
    so at the kill. A look that finds ``now()`` false lets it go on (SIGCONT), calls
    ``between`` (the test keeps work coming) and looks again.
    """
    process = agent.process
    assert process is not None
    deadline = time.monotonic() + timeout
    while True:
        agent.alive()
        process.send_signal(signal.SIGSTOP)
        if now():
            agent.kill()
            return
        process.send_signal(signal.SIGCONT)
        if time.monotonic() > deadline:
            raise AssertionError(f"the moment never came in {timeout:g}s:\n{tail(agent.log)}")
        between()


def kill_inside_transaction(
    agent: EchoAgent,
    transactions: OpenTransactions,
    stable: list[int],
    between: Callable[[], object],
) -> None:
    """SIGKILLs the agent while a transaction with records is open (beyond ``stable``):
    records written (below the high watermark) and not committed (above the last stable
    offset) by a process that never commits again."""
    kill_when(agent, lambda: transactions.open_beyond(stable), between)


def tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Waits for ``/readyz``: the process has its signal handlers and serves."""
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the agent exited ({process.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the agent did not get ready:\n{tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def start(config: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("chorus")),
            "agent",
            "run",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
            # a killed member's partitions move after its session expires: keep that short
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EchoAgent:
    """The agent's runtime.yaml, and its process, started again under any instance name."""

    def __init__(
        self, kafka: Any, tmp_path: Path, guarantee: str, *, partitions: int = PARTITIONS
    ) -> None:
        self.namespace = ns = namespace()
        self.source, self.sink = f"{ns}.numbers", f"{ns}.echoes"
        self.env: dict[str, str] = {}
        self.port = free_port()
        self.document: dict[str, Any] = {
            "agent": {"namespace": ns, "name": "echo"},
            "kafka": {"bootstrapServers": kafka.bootstrap_servers},
            "handler": "tests.agents.echo_process:SlowEchoHandler",
            "topics": {"subscribe": [self.source], "publish": [self.sink]},
            "delivery": {
                "guarantee": guarantee,
                "maxBatch": 500,
                "maxInFlight": 200,
                "handlerTimeoutSeconds": 60,
            },
            "http": {"host": "127.0.0.1", "port": self.port},
            "skills": [{"id": "echo", "name": "Echo"}],
            "instance": "replica-0",
        }
        create_missing_topics(kafka, [self.source, self.sink], partitions=partitions)
        runtime = parse_runtime_config(self.document)
        create_agent_topics(kafka, runtime)
        self.topics = runtime.topics
        self.dead_letter = runtime.topics.dead_letter
        self.tmp_path = tmp_path
        self.log = tmp_path / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, instance: str = "replica-0") -> subprocess.Popen[bytes]:
        self.document["instance"] = instance
        config = self.tmp_path / f"runtime-{instance}.yaml"
        config.write_text(yaml.safe_dump(self.document))
        self.process = start(config, self.log, self.env)
        return self.process

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        assert self.process is not None
        wait_ready(self.port, self.process, self.log)
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0, tail(self.log)

    def alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the agent exited ({self.process.returncode}):\n{tail(self.log)}")


class Feeder:
    """Writes the inputs ``{"n": n}`` (key ``n`` mod ``KEYS``) in order, up to a count:
    a test can keep work ahead of the agent without writing it all at once."""

    def __init__(self, kafka: Any, topic: str) -> None:
        self.producer = Producer(kafka.client_config(**{"linger.ms": 20}))
        self.topic = topic
        self.fed = 0

    def feed_to(self, count: int) -> None:
        for n in range(self.fed, min(count, INPUTS)):
            self.producer.produce(self.topic, key=str(n % KEYS), value=json.dumps({"n": n}))
        self.fed = max(self.fed, min(count, INPUTS))
        assert self.producer.flush(30) == 0


def feed(kafka: Any, topic: str) -> None:
    """Writes all ``INPUTS`` inputs."""
    Feeder(kafka, topic).feed_to(INPUTS)


def run_until(
    reader: EchoReader, agent: EchoAgent, done: Callable[[], bool], what: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        agent.alive()
        reader.poll()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {len(reader.echoes)} echoes:\n{tail(agent.log)}")


def ensure_stopped(*processes: subprocess.Popen[bytes] | None) -> None:
    """Kills what still runs (a test that failed half way)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(30)


def assert_in_key_order(echoes: list[tuple[str, int]]) -> None:
    """Per key, the echoes came in input order (inputs of a key were fed in rising ``n``)."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, n in echoes:
        by_key[key].append(n)
    for key, ns in by_key.items():
        assert ns == sorted(ns), f"key {key}: echoes out of input order: {ns}"


def check_echoes(
    echoes: list[tuple[str, int]], fed: int = INPUTS
) -> tuple[list[int], dict[int, int]]:
    """The inputs (of the first ``fed``) without an echo, and those with more than one."""
    seen = Counter(n for _, n in echoes)
    lost = [n for n in range(fed) if seen[n] == 0]
    return lost, {n: c for n, c in seen.items() if c > 1}
