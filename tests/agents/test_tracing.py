"""Trace context travels agent to agent over Kafka: one trace id from the caller to the third."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from a2a.types.a2a_pb2 import SendMessageRequest
from chorus_agents.binding.codec import OutRecord, header_map
from chorus_agents.tracing import TracingOutbox, extract, inject, setup_tracing, span, stamp
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.agents.conftest import (
    Connect,
    StartAgent,
    agent_config,
    answer_text,
    namespace,
    user_text,
)
from tests.agents.test_audit import wait_for_records
from tests.services.kafka import read_topic

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.unit
def test_records_produced_in_a_span_carry_its_context() -> None:
    setup_tracing("test")
    record = OutRecord("t", b"k", b"v", (("traceparent", b"00-old-old-01"), ("x", b"1")))
    assert stamp(record) is record  # outside a span: as it was
    with span("work", headers={"traceparent": PARENT}) as current:
        outbox = TracingOutbox()
        outbox.append(record)
        outbox.extend([OutRecord("t", None, b"w")])
        carried = inject()
    stamped = outbox.drain()
    context = current.get_span_context()
    assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    for out in stamped:
        headers = header_map(out.headers)
        assert headers["traceparent"] == carried["traceparent"]
        assert headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert header_map(stamped[0].headers)["x"] == "1"
    assert [k for k, _ in stamped[0].headers].count("traceparent") == 1


@pytest.mark.unit
def test_extract_ignores_headers_that_are_not_trace_context() -> None:
    context = extract({"traceparent": PARENT, "chorus-sender": "ns/a"})
    parent = trace.get_current_span(context).get_span_context()
    assert format(parent.span_id, "016x") == "b7ad6b7169203331"
    assert not trace.get_current_span(extract({})).get_span_context().is_valid


@pytest.mark.integration
@pytest.mark.anyio
async def test_one_trace_id_from_the_caller_through_three_agents(
    kafka: Any, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    configs = {name: agent_config(ns, name, kafka) for name in ("alpha", "beta", "gamma")}
    hosts = {name: await start_agent(config) for name, config in configs.items()}
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    alpha = hosts["alpha"]
    assert alpha.card is not None
    transport = (await caller(ns)).transport(alpha.card, alpha.card.supported_interfaces[0].url)

    try:
        with trace.get_tracer("test").start_as_current_span("console") as root:
            answer = await transport.send_message(
                SendMessageRequest(message=user_text("ask beta ask gamma echo hi"))
            )
        trace_id = format(root.get_span_context().trace_id, "032x")
        assert answer_text(answer.task) == "beta says gamma says echo: hi"

        spans = [s for s in exporter.get_finished_spans() if s.name == "chorus.message"]
        by_agent = {s.attributes["chorus.agent"]: s for s in spans if s.attributes}
        assert set(by_agent) == {f"{ns}/{name}" for name in hosts}
        for handled in by_agent.values():
            assert handled.context is not None
            assert format(handled.context.trace_id, "032x") == trace_id
        # each agent's span is a child of the span of the agent that called it
        assert by_agent[f"{ns}/beta"].parent is not None
        assert by_agent[f"{ns}/beta"].parent.span_id == by_agent[f"{ns}/alpha"].context.span_id  # type: ignore[union-attr]
        assert by_agent[f"{ns}/gamma"].parent.span_id == by_agent[f"{ns}/beta"].context.span_id  # type: ignore[union-attr]
    finally:
        exporter.shutdown()

    for name in ("beta", "gamma"):
        requests = await asyncio.to_thread(read_topic, kafka, configs[name].topics.inbox)
        assert len(requests) == 1
        assert header_map(requests[0].headers())["traceparent"].split("-")[1] == trace_id

    audit = configs["alpha"].topics.audit
    records = await wait_for_records(
        kafka, audit, lambda rs: sum(r["kind"] == "reply.sent" for r in rs) == 3
    )
    assert {r["trace_id"] for r in records} == {trace_id}
    received = {r["agent"]: r for r in records if r["kind"] == "message.received"}
    calls = {r["agent"]: r for r in records if r["kind"] == "agent.call"}
    assert received[f"{ns}/beta"]["causation_id"] == calls[f"{ns}/alpha"]["id"]
    assert received[f"{ns}/gamma"]["causation_id"] == calls[f"{ns}/beta"]["id"]
    assert calls[f"{ns}/alpha"]["causation_id"] == received[f"{ns}/alpha"]["id"]
