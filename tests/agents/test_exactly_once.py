"""Exactly-once under SIGKILL: an agent process killed three times loses and repeats nothing.

The agent (``chorus agent run``, a real subprocess) echoes every record of a subscribed
topic to a publish topic; the echo is written in the same Kafka transaction as the
input's offset. 10,000 inputs are produced up front; the process is killed with SIGKILL
at three random points of its progress and restarted each time (the restart fences the
killed producer's open transaction). Then, read committed, every input has exactly one
echo.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_api.runtime import parse_runtime_config
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.agents.conftest import create_agent_topics, create_missing_topics, namespace

ROOT = Path(__file__).resolve().parents[2]
INPUTS = 10_000
KILLS = 3


class EchoHandler(Handler):
    """Publishes each event's value, unchanged, to the agent's only publish topic."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        ctx.publish(event.topic.replace(".numbers", ".echoes"), event.value, key=event.key)


class CommittedCounter:
    """Counts the committed records of a topic, reading on from where it stopped."""

    def __init__(self, kafka: Any, topic: str, partitions: int) -> None:
        self.consumer = Consumer(
            kafka.client_config(
                **{
                    "group.id": f"counter-{topic}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                }
            )
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.values: list[int] = []

    def poll(self) -> int:
        # small batches: the count follows the agent closely, so a kill lands mid-stream
        for message in self.consumer.consume(200, 0.05):
            error = message.error()
            if error is None:
                self.values.append(json.loads(message.value() or b"")["n"])
            elif error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(error.str())
        return len(self.values)

    def wait_for(self, count: int, process: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + 300
        while self.poll() < count:
            if process.poll() is not None:
                raise AssertionError(f"the agent exited ({process.returncode}):\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.values)} of {count} echoes:\n{_tail(log)}")

    def settle(self) -> int:
        """Reads until a poll brings nothing new; returns the count."""
        before = -1
        while before != len(self.values):
            before = len(self.values)
            self.poll()
        return len(self.values)


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


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
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


@pytest.mark.integration
def test_every_input_has_exactly_one_output_despite_three_sigkills(
    kafka: Any, tmp_path: Path
) -> None:
    ns = namespace()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source, sink = f"{ns}.numbers", f"{ns}.echoes"
    create_missing_topics(kafka, [source, sink], partitions=3)
    document: dict[str, Any] = {
        "agent": {"namespace": ns, "name": "echo"},
        "kafka": {"bootstrapServers": kafka.bootstrap_servers},
        "handler": "tests.agents.test_exactly_once:EchoHandler",
        "topics": {"subscribe": [source], "publish": [sink]},
        "delivery": {"guarantee": "exactly-once", "maxBatch": 500, "maxInFlight": 1000},
        "http": {"host": "127.0.0.1", "port": port},
        "skills": [{"id": "echo", "name": "Echo"}],
        "instance": "replica-0",
    }
    create_agent_topics(kafka, parse_runtime_config(document))
    config = tmp_path / "runtime.yaml"
    config.write_text(yaml.safe_dump(document))
    log = tmp_path / "agent.log"

    producer = Producer(kafka.client_config(**{"linger.ms": 20}))
    for n in range(INPUTS):
        producer.produce(source, key=str(n % 64), value=json.dumps({"n": n}))
    assert producer.flush(30) == 0

    counter = CommittedCounter(kafka, sink, partitions=3)
    rng = random.Random()
    kill_points = sorted(rng.sample(range(200, INPUTS // 2), KILLS))
    at_kill: list[int] = []
    process = start(config, log)
    try:
        for point in kill_points:
            counter.wait_for(point, process, log)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            at_kill.append(counter.settle())
            process = start(config, log)
        counter.wait_for(INPUTS, process, log)
        wait_ready(port, process, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, _tail(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    # after a clean stop everything is committed: read on until the end of the topic
    counter.settle()
    counter.consumer.close()
    # the kills interrupted the work (else this test proves nothing)
    assert at_kill[0] < INPUTS, f"committed echoes at each kill: {at_kill}"
    seen = Counter(counter.values)
    lost = [n for n in range(INPUTS) if seen[n] == 0]
    duplicated = {n: c for n, c in seen.items() if c > 1}
    assert not lost, f"{len(lost)} inputs without an echo, e.g. {lost[:10]} (kills at {at_kill})"
    assert not duplicated, f"{len(duplicated)} inputs echoed more than once (kills at {at_kill})"
    assert len(counter.values) == INPUTS
