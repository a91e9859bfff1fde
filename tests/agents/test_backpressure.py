"""Backpressure: 60 s of events ten times faster than slow handlers can take them.

The agent (``chorus agent run``) takes a second per event, ``maxInFlight`` 32: about 32
events per second. The test feeds 300 per second for 60 s. A loop that buffered what it
polled would grow by thousands of records a second; this one pauses its partitions
when four times ``maxInFlight`` records are taken and unfinished, and resumes when there
is room. So its resident memory stays under its idle memory plus 100 MiB, its metrics
count several pauses (a pause after a resume), and outputs keep coming all along.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chorus_agents.handler import Context, DomainEvent, Handler
from confluent_kafka import Producer

from tests.agents.echo_process import EchoAgent, EchoReader, ensure_stopped, wait_ready

SECONDS = 60
RATE = 300
PAD = "x" * 400


class SecondPerEvent(Handler):
    """Takes a second per event (as a model call would), then publishes a small echo."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        await asyncio.sleep(1.0)
        ctx.publish(event.topic.replace(".numbers", ".echoes"), {"n": event.value["n"]})


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def pauses(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(r"^chorus_pauses_total (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


@pytest.mark.runtime
@pytest.mark.seconds(72)
def test_a_flood_of_events_pauses_the_partitions_and_memory_stays_bounded(
    kafka: Any, tmp_path: Path
) -> None:
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    agent.document["handler"] = "tests.agents.test_backpressure:SecondPerEvent"
    agent.document["delivery"] = {"guarantee": "exactly-once", "maxInFlight": 32}
    reader = EchoReader(kafka, agent.sink, committed=True)
    process = agent.start()
    try:
        wait_ready(agent.port, process, agent.log)
        time.sleep(2.0)
        idle = rss_mib(process.pid)
        producer = Producer(kafka.client_config(**{"linger.ms": 20}))
        began, fed, peak = time.monotonic(), 0, idle
        outputs_seen: list[int] = []
        while (elapsed := time.monotonic() - began) < SECONDS:
            while fed < elapsed * RATE:
                producer.produce(
                    agent.source, key=str(fed % 500), value=json.dumps({"n": fed, "pad": PAD})
                )
                fed += 1
            producer.poll(0)
            agent.alive()
            peak = max(peak, rss_mib(process.pid))
            outputs_seen.append(reader.poll())
            time.sleep(0.2)
        producer.flush(30)
        paused = pauses(agent.port)
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    reader.close()
    echoes = outputs_seen[-1]
    assert fed >= SECONDS * RATE * 0.9
    assert echoes < fed / 5, f"{echoes} echoes of {fed}: the handlers were not the bottleneck"
    # Outputs came all along, not in one burst at the end.
    assert (
        outputs_seen[len(outputs_seen) // 2] > 0 and echoes > outputs_seen[len(outputs_seen) // 2]
    )
    assert paused >= 2, f"the loop paused {paused} time(s): it should pause, resume, pause again"
    assert peak - idle < 100, f"RSS grew from {idle:.0f} MiB to {peak:.0f} MiB"
