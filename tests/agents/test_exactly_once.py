"""Exactly-once under SIGKILL, with handlers as slow and as uneven as model calls.

The agent (``chorus agent run``, a real subprocess) handles every record of a subscribed
topic by waiting its latency (most instant, some up to 1.5 s, a few 8 s: far beyond the
rest, so later records of their partitions finish first) and publishing an echo. The
echo is committed in the transaction that marks its record done, by the offset or, for
records finished beyond a running one, by the offset's metadata.

The process is SIGKILLed three times *while a transaction with records is open*: the
test watches the echo topic's high watermark pass its last stable offset (records
written, not committed) and kills at that moment. A ``read_uncommitted`` reader then
sees more echoes than there are inputs: the aborted ones, proof that the kills landed
inside transactions. The last restart takes a new instance name (a new transactional id,
as a replaced pod has). Read committed, every input has exactly one echo, and per key the
echoes come in input order.

The control runs the same with ``at-least-once`` and must find duplicates.
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
from typing import Any

import httpx
import pytest
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


def latency(n: int) -> float:
    """Input ``n``'s handling time: most instant, 12 % up to 1.5 s, one in 1,000 8 s."""
    if n % 1000 == 100:
        return 8.0
    draw = random.Random(n).random()
    return 0.0 if draw < 0.88 else 0.05 + (draw - 0.88) / 0.12 * 1.45


class SlowEchoHandler(Handler):
    """Waits the input's latency, then publishes its value to the agent's publish topic."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        n = event.value["n"]
        await asyncio.sleep(latency(n))
        ctx.publish(
            event.topic.replace(".numbers", ".echoes"),
            {"n": n, "pad": PAD},
            key=event.key,
        )


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

    def poll(self) -> int:
        for message in self.consumer.consume(500, 0.05):
            error = message.error()
            if error is None and self.raw:
                self.records.append(message)
            elif error is None:
                key = (message.key() or b"").decode()
                self.echoes.append((key, json.loads(message.value() or b"")["n"]))
            elif error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(error.str())
        return len(self.echoes)

    def settle(self) -> int:
        """Reads until a poll brings nothing new; returns the count."""
        before = -1
        while before != len(self.echoes):
            before = len(self.echoes)
            for _ in range(5):
                self.poll()
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

    def open_beyond(self, stable: list[int]) -> bool:
        """A transaction with records is open, on a partition whose stable offset moved
        past ``stable`` (so not the one an earlier kill left behind)."""
        committed = self.stable()
        high = self._ends(IsolationLevel.READ_UNCOMMITTED)
        return any(h > c and c > s for h, c, s in zip(high, committed, stable, strict=True))


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Waits for ``/readyz``: the process has its signal handlers and serves."""
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the agent exited ({process.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the agent did not get ready:\n{_tail(log)}")
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
            "handler": "tests.agents.test_exactly_once:SlowEchoHandler",
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
        assert self.process.wait(60) == 0, _tail(self.log)

    def alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"the agent exited ({self.process.returncode}):\n{_tail(self.log)}"
            )


def feed(kafka: Any, topic: str) -> None:
    producer = Producer(kafka.client_config(**{"linger.ms": 20}))
    for n in range(INPUTS):
        producer.produce(topic, key=str(n % KEYS), value=json.dumps({"n": n}))
    assert producer.flush(30) == 0


def run_until(
    reader: EchoReader, agent: EchoAgent, done: Callable[[], bool], what: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        agent.alive()
        reader.poll()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {len(reader.echoes)} echoes:\n{_tail(agent.log)}")


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


def check_echoes(echoes: list[tuple[str, int]]) -> tuple[list[int], dict[int, int]]:
    """The inputs without an echo, and those with more than one."""
    seen = Counter(n for _, n in echoes)
    lost = [n for n in range(INPUTS) if seen[n] == 0]
    return lost, {n: c for n, c in seen.items() if c > 1}


@pytest.mark.runtime
def test_every_input_has_exactly_one_output_despite_sigkills_inside_transactions(
    kafka: Any, tmp_path: Path
) -> None:
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    feed(kafka, agent.source)
    committed = EchoReader(kafka, agent.sink, committed=True)
    uncommitted = EchoReader(kafka, agent.sink, committed=False)
    transactions = OpenTransactions(kafka, agent.sink)
    at_kill: list[int] = []
    agent.start()
    try:
        for kill, point in enumerate((200, 700, 1300)):
            stable = transactions.stable()
            run_until(
                committed,
                agent,
                lambda p=point, s=stable: (
                    len(committed.echoes) >= p  # type: ignore[misc]
                    and transactions.open_beyond(s)
                ),
                f"a transaction open after {point} echoes",
                timeout=120,
            )
            agent.kill()
            at_kill.append(committed.settle())
            # the last restart is a replaced pod: a new name, so a new transactional id
            # (the killed transaction then holds readers back until it times out)
            agent.start("replica-1" if kill == 2 else "replica-0")
        run_until(committed, agent, lambda: committed.poll() >= INPUTS, "every echo", timeout=180)
        agent.stop()
    finally:
        ensure_stopped(agent.process)

    committed.settle()
    uncommitted.settle()
    committed.close()
    uncommitted.close()
    assert at_kill[-1] < INPUTS, f"committed echoes at each kill: {at_kill}"
    # The kills landed inside transactions: their records were written, then aborted.
    aborted = len(uncommitted.echoes) - len(committed.echoes)
    assert aborted > 0, f"no aborted echo: no kill hit an open transaction ({at_kill})"
    lost, duplicated = check_echoes(committed.echoes)
    assert not lost, f"{len(lost)} inputs without an echo, e.g. {lost[:10]} (kills at {at_kill})"
    assert not duplicated, f"{len(duplicated)} inputs echoed twice, e.g. {list(duplicated)[:10]}"
    assert_in_key_order(committed.echoes)


@pytest.mark.runtime
def test_control_at_least_once_duplicates_under_the_same_kills(kafka: Any, tmp_path: Path) -> None:
    """The same agent at least once: killed once mid-stream, it writes echoes again."""
    agent = EchoAgent(kafka, tmp_path, "at-least-once")
    feed(kafka, agent.source)
    reader = EchoReader(kafka, agent.sink, committed=True)
    agent.start()
    try:
        for point in (500,):
            run_until(
                reader,
                agent,
                lambda p=point: len(reader.echoes) >= p,  # type: ignore[misc]
                f"{point} echoes",
                timeout=120,
            )
            agent.kill()
            agent.start()
        run_until(reader, agent, lambda: reader.poll() >= INPUTS, "every echo", timeout=180)
        run_until(
            reader,
            agent,
            lambda: not check_echoes(reader.echoes)[0],
            "an echo of every input",
            timeout=180,
        )
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    reader.settle()
    reader.close()
    lost, duplicated = check_echoes(reader.echoes)
    assert not lost
    assert duplicated, "at-least-once with kills mid-stream must write some echo twice"


@pytest.mark.runtime
def test_a_replica_joining_and_leaving_mid_stream_loses_and_repeats_nothing(
    kafka: Any, tmp_path: Path
) -> None:
    """A second replica joins after 200 echoes and leaves (SIGTERM) after 900: partitions
    move to it and back while slow records run; read committed, every input once, in
    order per key."""
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    feed(kafka, agent.source)
    committed = EchoReader(kafka, agent.sink, committed=True)
    first = agent.start("replica-0")
    second: subprocess.Popen[bytes] | None = None
    try:
        run_until(committed, agent, lambda: len(committed.echoes) >= 200, "200 echoes", 120)
        agent.document["http"]["port"] = second_port = free_port()
        second = agent.start("replica-1")
        agent.process = first
        run_until(committed, agent, lambda: len(committed.echoes) >= 900, "900 echoes", 120)
        wait_ready(second_port, second, agent.log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, _tail(agent.log)
        run_until(committed, agent, lambda: committed.poll() >= INPUTS, "every echo", 180)
        agent.document["http"]["port"] = agent.port
        agent.stop()
    finally:
        ensure_stopped(first, second)
    committed.settle()
    committed.close()
    lost, duplicated = check_echoes(committed.echoes)
    assert not lost, f"{len(lost)} inputs without an echo, e.g. {lost[:10]}"
    assert not duplicated, f"{len(duplicated)} inputs echoed twice, e.g. {list(duplicated)[:10]}"
    assert_in_key_order(committed.echoes)
