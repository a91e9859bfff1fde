"""A code-defined agent on the real broker: domain events and A2A messages, handled exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.binding.codec import ERROR_REASON, header_map
from confluent_kafka import Producer

from tests.agents.conftest import (
    Connect,
    StartAgent,
    agent_config,
    answer_text,
    create_missing_topics,
    namespace,
    user_text,
)
from tests.agents.test_handler import RiskHandler
from tests.services.kafka import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_handler_reacts_to_events_and_messages_exactly_once_on_kafka(
    kafka: Any, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    signals, decisions = f"{ns}.signals", f"{ns}.decisions"
    await asyncio.to_thread(create_missing_topics, kafka, [signals, decisions], partitions=2)
    config = agent_config(
        ns,
        "risk",
        kafka,
        handler="tests.agents.test_handler:RiskHandler",
        topics={"subscribe": [signals], "publish": [decisions]},
        delivery={"maxAttempts": 2},
    )
    logic = RiskHandler(decisions)
    risk = await start_agent(config, logic)

    producer = Producer(kafka.client_config())
    events = [
        ("AAPL", {"symbol": "AAPL", "qty": 1}),
        ("MSFT", {"symbol": "MSFT", "qty": 2}),
        ("AAPL", {"symbol": "AAPL", "qty": 3}),
        ("BAD", {"symbol": "BAD", "qty": 0, "bad": True}),
    ]
    for key, value in events:
        producer.produce(signals, key=key, value=json.dumps(value))
    assert producer.flush(10) == 0

    assert risk.card is not None
    answer = (
        await (await caller(ns))
        .transport(risk.card, risk.card.supported_interfaces[0].url)
        .send_message(SendMessageRequest(message=user_text("NVDA", context_id="conv-1")))
    )
    assert answer_text(answer.task).startswith("risk of NVDA: 4")

    async def decided() -> list[Any]:
        while True:
            records = await asyncio.to_thread(read_topic, kafka, decisions)
            if len(records) >= 4:
                return records
            await asyncio.sleep(0.2)

    records = await asyncio.wait_for(decided(), 30)
    await asyncio.sleep(0.5)  # nothing more may come
    records = await asyncio.to_thread(read_topic, kafka, decisions)
    published = [((r.key() or b"").decode(), json.loads(r.value() or b"")) for r in records]
    assert sorted(published, key=str) == sorted(
        [
            ("AAPL", {"symbol": "AAPL", "score": 2}),
            ("MSFT", {"symbol": "MSFT", "score": 4}),
            ("AAPL", {"symbol": "AAPL", "score": 6}),
            ("conv-1", {"symbol": "NVDA", "score": 4}),
        ],
        key=str,
    )
    aapl = [value["score"] for key, value in published if key == "AAPL"]
    assert aapl == [2, 6]  # per key, in order

    dead = await asyncio.to_thread(read_topic, kafka, config.topics.dead_letter)
    assert [header_map(r.headers())[ERROR_REASON] for r in dead] == ["handler-failed"]
    assert logic.attempts["BAD"] == 2
