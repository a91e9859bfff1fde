"""Poison on the real broker: each bad record lands in the dead-letter topic with its reason.

Its sender, when it said where to answer, gets the JSON-RPC error; the good records around
it are served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest, TaskState
from chorus_agents.binding import codec
from chorus_agents.binding.codec import A2A_VERSION, CORRELATION_ID, REPLY_TO, SENDER
from chorus_agents.proto import to_dict
from confluent_kafka import Producer

from tests.agents.conftest import (
    Connect,
    StartAgent,
    agent_config,
    answer_text,
    namespace,
    user_text,
)
from tests.services.kafka import KafkaBroker, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LIMIT = 4096


def request_body(request_id: str, method: str = "SendMessage") -> bytes:
    params = to_dict(SendMessageRequest(message=user_text("echo fine")))
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    ).encode()


def request_headers(
    request_id: str, reply_to: str, version: str = "1.0"
) -> list[tuple[str, bytes]]:
    return [
        (A2A_VERSION, version.encode()),
        (CORRELATION_ID, request_id.encode()),
        (REPLY_TO, reply_to.encode()),
        (SENDER, b"test/poisoner"),
    ]


async def test_poison_goes_to_the_dead_letter_topic_and_the_rest_is_served(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    config = agent_config(ns, "risk", kafka, delivery={"maxRecordBytes": LIMIT})
    risk = await start_agent(config)
    connection = await caller(ns)
    replies = connection.replies_topic
    assert risk.card is not None
    to_risk = connection.transport(risk.card, risk.card.supported_interfaces[0].url)

    poison: dict[str, tuple[bytes | None, list[tuple[str, Any]], str]] = {
        "p-json": (
            b'{"jsonrpc": "2.0", "id": "p-json", ',
            request_headers("p-json", replies),
            "invalid-json",
        ),
        "p-not-a2a": (
            b'{"order": "buy", "qty": 100}',
            request_headers("p-not-a2a", replies),
            "not-json-rpc",
        ),
        "p-method": (
            request_body("p-method", "tasks/send"),
            request_headers("p-method", replies),
            "unknown-method",
        ),
        "p-large": (b"x" * (LIMIT + 1), request_headers("p-large", replies), "too-large"),
        "p-version": (
            request_body("p-version"),
            request_headers("p-version", replies, "0.3"),
            "unsupported-version",
        ),
        "p-unanswerable": (
            request_body("p-unanswerable"),
            [(A2A_VERSION, b"1.0")],
            "missing-header",
        ),
        "p-reply-to": (
            request_body("p-reply-to"),
            request_headers("p-reply-to", "trading.decisions"),  # a topic, but no replies topic
            "invalid-header",
        ),
    }
    producer = Producer(kafka.client_config())
    for name, (value, headers, _) in poison.items():
        producer.produce(config.topics.inbox, key=name.encode(), value=value, headers=headers)
    assert producer.flush(10) == 0

    # Good requests, sent after the poison (and to the same partitions), are all answered.
    answers = await asyncio.gather(
        *(
            to_risk.send_message(SendMessageRequest(message=user_text(f"echo good {i}")))
            for i in range(5)
        )
    )
    assert sorted(answer_text(a.task) for a in answers) == [f"echo: good {i}" for i in range(5)]
    assert {a.task.status.state for a in answers} == {TaskState.TASK_STATE_COMPLETED}

    dead = await asyncio.to_thread(read_topic, kafka, config.topics.dead_letter)
    by_key = {(record.key() or b"").decode(): record for record in dead}
    assert set(by_key) == set(poison)
    for name, (value, _, reason) in poison.items():
        record = by_key[name]
        fields = codec.header_map(record.headers())
        assert fields[codec.ERROR_REASON] == reason, name
        assert fields[codec.ERROR_MESSAGE]
        assert fields[codec.ERROR_TOPIC] == config.topics.inbox
        assert fields[codec.ERROR_AGENT] == f"{ns}/risk"
        assert int(fields[codec.ERROR_OFFSET]) >= 0
        assert record.value() == value  # kept byte for byte, for replay

    # Every poison record that said where to answer was answered with the matching error.
    answered = {}
    for record in await asyncio.to_thread(read_topic, kafka, replies):
        response = codec.decode_response(record.value(), record.headers())
        if response.correlation_id.startswith("p-"):
            assert response.end and response.error is not None
            answered[response.correlation_id] = response.error["code"]
    assert answered == {
        "p-json": -32700,
        "p-not-a2a": -32600,
        "p-method": -32601,
        "p-large": -32600,
        "p-version": -32009,
    }
    assert risk.server is not None
    assert risk.server.stats.poison == {reason: 1 for _, _, reason in poison.values()}
