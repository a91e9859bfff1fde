"""Liveness, readiness and logs of an agent process."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from chorus_agents.audit import AuditLog
from chorus_agents.binding.outbox import Outbox
from chorus_agents.health import Health
from chorus_agents.logs import REDACTED, setup_logging
from chorus_agents.tracing import setup_tracing, span
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.agents.conftest import StartAgent, agent_config, namespace


@pytest.mark.unit
def test_readiness_says_which_check_fails_and_why() -> None:
    refused: list[str | None] = [None]
    health = Health(readiness={"kafka-access": lambda: refused[0]})
    client = TestClient(Starlette(routes=health.routes()))
    assert client.get("/readyz").json() == {
        "status": "ok",
        "checks": {"event-loop": "ok", "kafka-access": "ok"},
    }
    refused[0] = "Kafka refuses access: TOPIC_AUTHORIZATION_FAILED"
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["kafka-access"] == refused[0]
    assert client.get("/healthz").status_code == 200  # not ready is not dead


@pytest.mark.unit
def test_a_stalled_loop_or_a_broken_check_is_reported() -> None:
    def broken() -> str | None:
        raise RuntimeError("no")

    health = Health(liveness={"broken": broken}, stall_after=0.0)
    checks = health.alive()
    assert checks["event-loop"].startswith("no heartbeat for")
    assert checks["broken"] == "check failed: RuntimeError('no')"
    assert TestClient(Starlette(routes=health.routes())).get("/healthz").status_code == 503


@pytest.mark.integration
@pytest.mark.anyio
async def test_a_running_agent_is_alive_and_ready_then_not(
    kafka: Any, start_agent: StartAgent
) -> None:
    agent = await start_agent(agent_config(namespace(), "probed", kafka))
    assert agent.http is not None
    base = f"http://127.0.0.1:{agent.http.port}"
    async with httpx.AsyncClient() as http:
        alive = await http.get(f"{base}/healthz")
        assert alive.status_code == 200
        assert alive.json()["checks"] == {"event-loop": "ok", "kafka-loop": "ok"}
        ready = await http.get(f"{base}/readyz")
        for _ in range(300):  # the assignment may come a moment after the start
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.1)
            ready = await http.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {
            "event-loop",
            "kafka-loop",
            "kafka-access",
            "kafka-reachable",
            "assignment",
        }
    assert agent.ready
    await agent.stop()
    assert not agent.ready
    assert agent.health.ready()["kafka-loop"] == "the Kafka loop does not serve"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logs set up as ``chorus agent run`` does, into a buffer; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging(agent="ns/logger", stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


@pytest.mark.unit
def test_logs_are_json_with_agent_task_and_trace_ids_and_no_secret(
    json_logs: io.StringIO,
) -> None:
    setup_tracing("test")
    audit = AuditLog(agent="ns/logger", topic="chorus.ns.audit", outbox=Outbox())
    with (
        span("work") as current,
        audit.scope("corr", task_id="task-1", context_id="ctx-1"),
    ):
        structlog.get_logger("chorus_agents.test").info(
            "connected", password="hunter2", settings={"sasl.password": "hunter2", "acks": "all"}
        )
        logging.getLogger("chorus_agents.plain").warning("plain %s", "logging")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert "hunter2" not in json_logs.getvalue()
    first, second = lines
    trace_id = format(current.get_span_context().trace_id, "032x")
    assert first["event"] == "connected"
    assert first["password"] == REDACTED
    assert first["settings"] == {"sasl.password": REDACTED, "acks": "all"}
    for line in lines:
        assert line["agent"] == "ns/logger"
        assert line["task_id"] == "task-1" and line["context_id"] == "ctx-1"
        assert line["trace_id"] == trace_id
    assert second["event"] == "plain logging" and second["level"] == "warning"
