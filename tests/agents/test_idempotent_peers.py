"""Peer calls are idempotent: a caller killed after its peer answered asks again, once.

The caller (``chorus agent run``, a subprocess) handles an event by asking its peer
(another ``chorus agent run``, the scripted test agent) ``echo <n>``, then stalls while a
flag file exists, then publishes the answer. It is SIGKILLed while it stalls: the peer
has answered, the caller's event is not committed. Restarted, it handles the event again
and asks again, with the same ``messageId`` (derived from the event and the call's
ordinal): the peer answers from the task it made the first time. The peer's audit shows
one ``message.received``; the caller's output is there once.

The control asks through the plain SDK client with a fresh ``messageId`` each time, as a
caller without that derivation would: the peer acts twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from a2a.helpers import get_artifact_text, new_text_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest, Task
from chorus_agents.calls import fold
from chorus_agents.handler import Context, DomainEvent, Handler
from chorus_api.runtime import parse_runtime_config
from chorus_api.topics import AGENT_CARDS_TOPIC, audit_topic
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.agents.conftest import create_agent_topics, create_missing_topics, namespace
from tests.agents.echo_process import ensure_stopped, free_port, start, tail, wait_ready


class AskingHandler(Handler):
    """Asks ``peer`` to echo the event's ``n``, stalls while ``CHORUS_TEST_STALL_FLAG``
    exists, then publishes the answer. With ``CHORUS_TEST_FRESH_IDS`` set it asks through
    the SDK client with a new ``messageId`` (the control)."""

    async def on_event(self, event: DomainEvent, ctx: Context) -> None:
        import asyncio

        n = event.value["n"]
        if os.environ.get("CHORUS_TEST_FRESH_IDS"):
            client = await ctx.agents.client("peer")
            answer: Any = None
            message = new_text_message(f"echo {n}", role=Role.ROLE_USER)
            message.message_id = str(uuid.uuid4())
            try:
                async for update in client.send_message(SendMessageRequest(message=message)):
                    answer = fold(answer, update)
            finally:
                await client.close()
        else:
            answer = await ctx.agents.ask("peer", f"echo {n}")
        flag = os.environ.get("CHORUS_TEST_STALL_FLAG", "")
        while flag and Path(flag).exists():
            await asyncio.sleep(0.1)
        text = get_artifact_text(answer.artifacts[0]) if isinstance(answer, Task) else ""
        ctx.publish(event.topic.replace(".asks", ".answers"), {"n": n, "text": text})


def agent_document(kafka: Any, ns: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "agent": {"namespace": ns, "name": name},
        "kafka": {"bootstrapServers": kafka.bootstrap_servers},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "skills": [{"id": name, "name": name}],
        "instance": f"{name}-0",
        **extra,
    }


def received(kafka: Any, ns: str, agent: str) -> int:
    """How many messages ``agent``'s audit says it received (read committed)."""
    topic = audit_topic(ns)
    consumer = Consumer(
        kafka.client_config(
            **{"group.id": f"audit-{uuid.uuid4().hex[:6]}", "isolation.level": "read_committed"}
        )
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    count, quiet = 0, 0
    while quiet < 3:
        batch = consumer.consume(500, 0.3)
        quiet = 0 if batch else quiet + 1
        for message in batch:
            if message.error() is None:
                body = json.loads(message.value() or b"")
                if body["agent"] == f"{ns}/{agent}" and body["kind"] == "message.received":
                    count += 1
    consumer.close()
    return count


def answers(kafka: Any, topic: str) -> list[dict[str, Any]]:
    consumer = Consumer(kafka.client_config(**{"group.id": f"answers-{uuid.uuid4().hex[:6]}"}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    found, quiet = [], 0
    while quiet < 3:
        batch = consumer.consume(100, 0.3)
        quiet = 0 if batch else quiet + 1
        found += [json.loads(m.value() or b"") for m in batch if m.error() is None]
    consumer.close()
    return found


def ask_killed_after_the_answer(kafka: Any, tmp_path: Path, *, fresh_ids: bool) -> int:
    """Runs the scenario; returns how many times the peer received the question."""
    ns = namespace()
    asks, outputs = f"{ns}.asks", f"{ns}.answers"
    create_missing_topics(kafka, [AGENT_CARDS_TOPIC], config={"cleanup.policy": "compact"})
    create_missing_topics(kafka, [asks, outputs], partitions=1)
    peer = agent_document(kafka, ns, "peer", handler="tests.agents.conftest:ScriptExecutor")
    caller = agent_document(
        kafka,
        ns,
        "caller",
        handler="tests.agents.test_idempotent_peers:AskingHandler",
        topics={"subscribe": [asks], "publish": [outputs]},
    )
    processes = []
    flag = tmp_path / "stall.flag"
    env = {"CHORUS_TEST_STALL_FLAG": str(flag)}
    if fresh_ids:
        env["CHORUS_TEST_FRESH_IDS"] = "1"
    for document in (peer, caller):
        create_agent_topics(kafka, parse_runtime_config(document))
        (tmp_path / f"{document['agent']['name']}.yaml").write_text(yaml.safe_dump(document))
    log = tmp_path / "agents.log"
    try:
        processes.append(start(tmp_path / "peer.yaml", log))
        wait_ready(peer["http"]["port"], processes[0], log)
        producer = Producer(kafka.client_config())
        producer.produce(asks, key="q", value=json.dumps({"n": 7}))
        assert producer.flush(10) == 0
        flag.touch()
        processes.append(start(tmp_path / "caller.yaml", log, env))
        deadline = time.monotonic() + 90
        while received(kafka, ns, "peer") < 1:
            assert time.monotonic() < deadline, tail(log)
        time.sleep(1.0)  # the answer reaches the caller, which stalls
        processes[1].kill()
        processes[1].wait(30)
        flag.unlink()
        processes[1] = start(tmp_path / "caller.yaml", log, env)
        deadline = time.monotonic() + 90
        while not answers(kafka, outputs):
            assert processes[1].poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
        assert [a["text"] for a in answers(kafka, outputs)] == ["echo: 7"]
    finally:
        ensure_stopped(*processes)
    return received(kafka, ns, "peer")


@pytest.mark.runtime
@pytest.mark.seconds(20)
def test_a_caller_killed_after_its_peer_answered_asks_again_and_the_peer_acts_once(
    kafka: Any, tmp_path: Path
) -> None:
    assert ask_killed_after_the_answer(kafka, tmp_path, fresh_ids=False) == 1


@pytest.mark.runtime
@pytest.mark.seconds(20)
def test_control_fresh_message_ids_make_the_peer_act_twice(kafka: Any, tmp_path: Path) -> None:
    assert ask_killed_after_the_answer(kafka, tmp_path, fresh_ids=True) == 2
