"""Prometheus metrics: what the audit and the handling count; ``/metrics`` of a running agent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from a2a.utils.errors import A2AError
from chorus_agents.binding.server import ServerStats
from chorus_agents.metrics import AgentMetrics, LagSampler
from prometheus_client import generate_latest

from tests.agents.conftest import Connect, StartAgent, agent_config, namespace, user_text


def sample(metrics: AgentMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.mark.unit
def test_audit_records_are_counted_by_kind_and_model_calls_by_model() -> None:
    metrics = AgentMetrics()
    metrics.observe_audit("tool.call", {"tool": "exchange", "name": "get_quote"})
    metrics.observe_audit("tool.call", {"tool": "exchange", "outcome": "error"})
    metrics.observe_audit("model.call", {"provider": "openai", "model": "m", "outcome": "ok"})
    metrics.observe_audit("model.call", {"provider": "openai", "outcome": "error"})
    calls = "chorus_model_calls_total"
    assert sample(metrics, "chorus_audit_records_total", kind="tool.call") == 2
    assert sample(metrics, calls, provider="openai", model="m", outcome="ok") == 1
    assert sample(metrics, calls, provider="openai", model="", outcome="error") == 1


@pytest.mark.unit
def test_handling_counts_outcomes_and_times_them() -> None:
    metrics = AgentMetrics()
    with metrics.handling("event"):
        pass
    with pytest.raises(RuntimeError), metrics.handling("event"):
        raise RuntimeError("boom")
    assert sample(metrics, "chorus_handled_total", source="event", outcome="ok") == 1
    assert sample(metrics, "chorus_handled_total", source="event", outcome="error") == 1
    assert sample(metrics, "chorus_errors_total", where="event") == 1
    assert sample(metrics, "chorus_handling_seconds_count", source="event") == 2


@pytest.mark.unit
def test_the_loop_counters_are_read_at_scrape_time() -> None:
    metrics = AgentMetrics()

    stats = ServerStats(records=7, transactions=3, authorization_failed=True)
    stats.requests["SendMessage"] = 5
    stats.poison["invalid-json"] = 2
    metrics.watch_loop(lambda: stats)
    text = generate_latest(metrics.registry).decode()
    assert "chorus_records_total 7.0" in text
    assert 'chorus_requests_total{method="SendMessage"} 5.0' in text
    assert 'chorus_dead_letters_total{reason="invalid-json"} 2.0' in text
    assert "chorus_transactions_total 3.0" in text
    assert "chorus_kafka_authorization_failed 1.0" in text


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_running_agent_serves_its_metrics(
    kafka: Any, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    agent = await start_agent(agent_config(ns, "counted", kafka))
    assert agent.card is not None and agent.http is not None
    transport = (await caller(ns)).transport(agent.card, agent.card.supported_interfaces[0].url)
    for text in ("echo one", "echo two"):
        await transport.send_message(SendMessageRequest(message=user_text(text)))
    with pytest.raises(A2AError, match="asked to fail"):
        await transport.send_message(SendMessageRequest(message=user_text("fail")))
    lags = await agent.lag.sample()
    assert set(lags) == {(agent.config.topics.inbox, p) for p in range(3)}

    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{agent.http.port}/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'chorus_handled_total{outcome="ok",source="message"} 2.0' in text
    assert 'chorus_handled_total{outcome="error",source="message"} 1.0' in text
    assert 'chorus_requests_total{method="SendMessage"} 3.0' in text
    assert "chorus_transactions_total" in text
    assert f'chorus_consumer_lag{{partition="0",topic="{agent.config.topics.inbox}"}}' in text
    assert 'chorus_audit_records_total{kind="message.received"} 3.0' in text
    assert "process_cpu_seconds_total" in text  # the default registry is served too


@pytest.mark.integration
@pytest.mark.anyio
async def test_lag_counts_what_the_group_has_not_consumed(kafka: Any) -> None:
    from confluent_kafka import Producer

    from tests.agents.conftest import create_missing_topics

    topic = f"{namespace()}.backlog"
    await asyncio.to_thread(create_missing_topics, kafka, [topic], partitions=1)
    producer = Producer(kafka.client_config())
    for n in range(5):
        producer.produce(topic, value=str(n))
    assert producer.flush(10) == 0
    sampler = LagSampler(
        kafka.client_config(), group_id=f"group-{topic}", topics=[topic], metrics=AgentMetrics()
    )
    assert await sampler.sample() == {(topic, 0): 5}
    assert sampler.last_ok is not None and sampler.authorization_error is None
    stop = asyncio.Event()
    stop.set()
    await sampler.run(stop)  # samples once more, then closes its consumer
