"""The HTTP gateway: a2a-sdk's HTTP client gets what the Kafka binding gives, same tasks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import GetTaskRequest, SendMessageRequest, StreamResponse, TaskState
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, TransportProtocol
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

    interfaces = [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]]
    assert interfaces == [
        (BINDING_URI, "kafka:" + inbox_topic(ns, "risk")),
        (TransportProtocol.JSONRPC.value, risk.http_url),
    ]
    assert card["name"] == "risk"
    assert card["capabilities"]["streaming"] is True
    assert [s["id"] for s in card["skills"]] == ["script"]
    assert (health.status_code, ready.status_code) == (200, 200)

    await risk.stop()
    assert not risk.ready
