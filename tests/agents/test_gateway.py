"""The HTTP gateway: a2a-sdk's HTTP client gets what the Kafka binding gives, same tasks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import GetTaskRequest, SendMessageRequest, StreamResponse, Task, TaskState
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, TransportProtocol
from a2a.utils.errors import A2AError
from chorus_agents.binding.codec import BINDING_URI
from chorus_api.topics import inbox_topic

from tests.agents.conftest import (
    Connect,
    StartAgent,
    agent_config,
    answer_text,
    namespace,
    user_text,
)
from tests.services.kafka import KafkaBroker

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def final_task(events: list[StreamResponse]) -> Any:
    task = next(e.task for e in events if e.HasField("task"))
    for event in events:
        if event.HasField("status_update"):
            task.status.CopyFrom(event.status_update.status)
        elif event.HasField("artifact_update"):
            task.artifacts.append(event.artifact_update.artifact)
    return task


async def test_the_sdk_http_client_gets_the_same_answer_as_over_kafka(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    assert risk.card is not None
    over_kafka = (
        await (await caller(ns))
        .transport(risk.card, risk.card.supported_interfaces[0].url)
        .send_message(SendMessageRequest(message=user_text("echo TSLA x3")))
    )

    async with httpx.AsyncClient(timeout=30) as http:
        client = await create_client(risk.http_url, ClientConfig(httpx_client=http))
        events = [
            event
            async for event in client.send_message(
                SendMessageRequest(message=user_text("echo TSLA x3"))
            )
        ]
        over_http = final_task(events)
        # A task made over Kafka is read over HTTP: one handler, one task store.
        same_task = await client.get_task(GetTaskRequest(id=over_kafka.task.id))

    assert over_http.status.state == over_kafka.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(over_http) == answer_text(over_kafka.task) == "echo: TSLA x3"
    assert same_task.id == over_kafka.task.id
    assert same_task.artifacts == over_kafka.task.artifacts


async def test_the_card_lists_both_interfaces_and_health_answers(
    kafka: KafkaBroker, start_agent: StartAgent
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))

    async with httpx.AsyncClient(base_url=risk.http_url, timeout=10) as http:
        card = (await http.get(AGENT_CARD_WELL_KNOWN_PATH)).json()
        health, ready = await http.get("/healthz"), await http.get("/readyz")
        # Ready once the group has assigned partitions: a moment after the loop starts.
        for _ in range(100):
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.1)
            ready = await http.get("/readyz")

    interfaces = [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]]
    assert interfaces == [
        (BINDING_URI, "kafka:" + inbox_topic(ns, "risk")),
        (TransportProtocol.JSONRPC.value, risk.http_url),
    ]
    assert card["name"] == "risk"
    assert card["capabilities"]["streaming"] is True
    assert [s["id"] for s in card["skills"]] == ["script"]
    assert (health.status_code, ready.status_code) == (200, 200), ready.text

    await risk.stop()
    assert not risk.ready


async def test_an_http_answer_follows_the_commit_of_its_task_and_a_huge_one_fails_alone(
    kafka: KafkaBroker, start_agent: StartAgent
) -> None:
    """Unary ``SendMessage`` over HTTP: the answer comes once the task is committed (the
    last stable offset of the task store, read right after the answer, covers it); a
    message whose task could never be written (1.2 MB, 10 MiB) is answered with the reason, and
    the agent goes on."""
    from confluent_kafka import Consumer, IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

    ns = namespace()
    config = agent_config(ns, "risk", kafka)
    risk = await start_agent(config)
    tasks = config.topics.tasks
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(
            risk.http_url, ClientConfig(httpx_client=http, streaming=False)
        )
        for size in (1_200_000, 10 << 20):  # over the record limit, and over 10 MiB
            with pytest.raises(A2AError, match="output-too-large"):
                async for _ in client.send_message(
                    SendMessageRequest(message=user_text("echo " + "x" * size))
                ):
                    pass
        events = [
            event
            async for event in client.send_message(SendMessageRequest(message=user_text("echo ok")))
        ]
        admin = AdminClient(kafka.client_config())
        partitions = [TopicPartition(tasks, p) for p in range(3)]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        stable = admin.list_offsets(
            dict.fromkeys(partitions, latest), isolation_level=IsolationLevel.READ_COMMITTED
        )
        ends = {tp.partition: stable[tp].result().offset for tp in partitions}
    task = next(e.task for e in events if e.HasField("task"))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    reader = Consumer(
        kafka.client_config(**{"group.id": f"read-{ns}", "isolation.level": "read_committed"})
    )
    reader.assign([TopicPartition(tasks, p, 0) for p in ends])
    keys: set[bytes] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # read what was committed when the answer came
        for message in reader.consume(100, 0.5):
            if message.error() is None and message.offset() < ends[message.partition() or 0]:
                keys.add(message.key() or b"")
        positions = reader.position([TopicPartition(tasks, p) for p in ends])
        if all(tp.offset >= ends[tp.partition or 0] for tp in positions if ends[tp.partition or 0]):
            break
    reader.close()
    assert task.id.encode() in keys, "the answer came before its task was committed"
    assert risk.server is not None and risk.server.ready


async def test_an_http_stream_sends_each_event_after_the_commit_that_stores_it(
    kafka: KafkaBroker, start_agent: StartAgent
) -> None:
    """``SendStreamingMessage`` over HTTP: when an event arrives, the task state it
    reports is already committed in the task store (read committed, right then). Commits
    are 2 s apart, so an event sent before its commit would be seen before it."""
    from chorus_agents.proto import from_json
    from chorus_agents.tasks import TERMINAL_STATES

    from tests.services.kafka import read_topic

    ns = namespace()
    config = agent_config(ns, "risk", kafka, delivery={"commitIntervalMs": 2000})
    risk = await start_agent(config)

    def committed_states(task_id: str) -> list[int]:
        return [
            from_json(r.value() or b"", Task()).status.state
            for r in read_topic(kafka, config.topics.tasks)
            if r.key() == task_id.encode()
        ]

    seen: list[tuple[int, list[int]]] = []
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(risk.http_url, ClientConfig(httpx_client=http, streaming=True))
        async for event in client.send_message(SendMessageRequest(message=user_text("stream 3"))):
            if event.HasField("task"):
                task_id, state = event.task.id, event.task.status.state
            elif event.HasField("status_update"):
                task_id, state = event.status_update.task_id, event.status_update.status.state
            else:
                continue
            seen.append((state, await asyncio.to_thread(committed_states, task_id)))
    assert seen[-1][0] == TaskState.TASK_STATE_COMPLETED
    assert seen[-1][0] in TERMINAL_STATES
    for sent, committed in seen:
        assert sent in committed, f"{TaskState.Name(sent)} was sent before its commit: {seen}"
