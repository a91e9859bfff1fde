"""Slow handlers: no head-of-line blocking, and records finished beyond a stalled one.

All records are on one partition. The first belongs to key ``stall``, whose handler
blocks (as a model call that hangs would); 600 records of other keys follow it on the
same partition. Their echoes must keep coming while it blocks (a loop that waits for its
batch, or holds outputs until the offset covers them, shows none). Then the process is
SIGKILLed: the partition's committed offset is still the stalled record's, and the
offset's metadata names the 600 finished beyond it. The restarted agent (no longer
stalling) must echo the stalled record and none of the 600 again.

The control is in the same test: a consumer that reads the committed offset alone, as a
plain Kafka consumer would, finds the 600 records again after it: without the metadata
every one of them would run twice.

Outputs that cannot be written: a handler that publishes 1.5 MB, or to a declared topic
that does not exist, fails that record alone (dead letter with the reason), while the
records around it, in the same commits, are echoed; so does one that hangs past
``handlerTimeout`` (reason ``timeout``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chorus_agents.binding.ledger import decode
from chorus_agents.handler import Context, DomainEvent, Handler
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.agents.echo_process import EchoAgent, EchoReader, ensure_stopped, run_until

OTHERS = 600
STALL_FLAG = "stall.flag"


class StallingHandler(Handler):
    """Key ``stall`` blocks while the file ``CHORUS_TEST_STALL_FLAG`` names exists; any
    other record is echoed at once. ``big`` publishes 1.5 MB; ``nowhere`` publishes to a
    declared topic that does not exist; ``hang`` never ends."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        n = event.value["n"]
        sink = event.topic.replace(".numbers", ".echoes")
        flag = os.environ.get("CHORUS_TEST_STALL_FLAG")
        if event.key == "stall":
            while flag is not None and Path(flag).exists():
                await asyncio.sleep(0.1)
        if event.key == "hang":
            await asyncio.sleep(3600)
        if event.key == "big":
            ctx.publish(sink, {"n": n, "pad": "x" * 1_500_000}, key=event.key)
            return
        if event.key == "nowhere":
            ctx.publish(event.topic.replace(".numbers", ".missing"), {"n": n}, key=event.key)
            return
        ctx.publish(sink, {"n": n}, key=event.key)


def stalling_agent(kafka: Any, tmp_path: Path) -> EchoAgent:
    agent = EchoAgent(kafka, tmp_path, "exactly-once", partitions=1)
    agent.document["handler"] = "tests.agents.test_slow_handlers:StallingHandler"
    agent.document["topics"]["publish"].append(agent.source.replace(".numbers", ".missing"))
    agent.env["CHORUS_TEST_STALL_FLAG"] = str(tmp_path / STALL_FLAG)
    return agent


def produce(kafka: Any, topic: str, records: list[tuple[str, int]]) -> None:
    producer = Producer(kafka.client_config(**{"linger.ms": 5}))
    for key, n in records:
        producer.produce(topic, key=key, value=json.dumps({"n": n}))
    assert producer.flush(30) == 0


def committed_offset(kafka: Any, group: str, topic: str) -> TopicPartition:
    consumer = Consumer(kafka.client_config(**{"group.id": group}))
    try:
        (position,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return position
    finally:
        consumer.close()


@pytest.mark.runtime
@pytest.mark.seconds(11)
def test_other_keys_flow_past_a_stalled_record_and_are_not_run_again_after_a_kill(
    kafka: Any, tmp_path: Path
) -> None:
    agent = stalling_agent(kafka, tmp_path)
    flag = tmp_path / STALL_FLAG
    flag.touch()
    produce(kafka, agent.source, [("stall", 0)] + [(f"k{n % 40}", n) for n in range(1, OTHERS + 1)])
    reader = EchoReader(kafka, agent.sink, committed=True, partitions=1)
    agent.start()
    try:
        began = time.monotonic()
        run_until(
            reader,
            agent,
            lambda: len(reader.echoes) >= OTHERS,
            "the other keys' echoes while one key stalls",
            timeout=90,
        )
        flowing = time.monotonic() - began
        # Still stalled: the stalled record's echo is not there.
        assert 0 not in {n for _, n in reader.echoes}
        agent.kill()
    finally:
        ensure_stopped(agent.process)

    # The control: the offset alone would run all 600 again.
    position = committed_offset(kafka, f"chorus.{agent.namespace}.echo", agent.source)
    assert position.offset == 0, position
    assert decode(0, position.metadata) == set(range(1, OTHERS + 1))

    flag.unlink()
    agent.start()
    try:
        run_until(
            reader,
            agent,
            lambda: 0 in {n for _, n in reader.echoes},
            "the stalled record's echo after the restart",
            timeout=90,
        )
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    reader.settle()
    reader.close()
    seen = Counter(n for _, n in reader.echoes)
    assert sorted(seen) == list(range(OTHERS + 1))
    assert [n for n, c in seen.items() if c > 1] == [], "records finished before the kill ran again"
    assert flowing < 60, f"600 echoes of other keys took {flowing:.0f}s behind one stalled key"


@pytest.mark.runtime
@pytest.mark.seconds(8)
def test_an_unwritable_output_or_a_timeout_fails_only_its_own_record(
    kafka: Any, tmp_path: Path
) -> None:
    agent = stalling_agent(kafka, tmp_path)
    agent.document["delivery"]["handlerTimeoutSeconds"] = 3
    records = [(f"k{n}", n) for n in range(30)]
    records[10] = ("big", 10)
    records[20] = ("nowhere", 20)
    records[25] = ("hang", 25)
    produce(kafka, agent.source, records)
    reader = EchoReader(kafka, agent.sink, committed=True, partitions=1)
    dead = EchoReader(kafka, agent.dead_letter, committed=True, partitions=3, raw=True)
    agent.start()
    try:
        run_until(reader, agent, lambda: len(reader.echoes) >= 27, "27 echoes", timeout=90)
        run_until(dead, agent, lambda: len(dead.records) >= 3, "3 dead letters", timeout=30)
        agent.alive()  # the process stays up
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    reader.settle()
    assert sorted(n for _, n in reader.echoes) == [n for n in range(30) if n not in (10, 20, 25)]
    reasons = {
        json.loads(r.value())["n"]: dict(r.headers() or [])["chorus-error-reason"].decode()
        for r in dead.records
    }
    assert reasons == {10: "output-too-large", 20: "output-refused", 25: "timeout"}
    reader.close()
    dead.close()
