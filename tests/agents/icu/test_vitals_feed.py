"""The vitals feed: icu.vitals records into the device gateway, malformed ones skipped and counted.

The unit tests drive :meth:`VitalsFeed.handle` and the configuration; the integration tests
run the clinical MCP server as its Tool does (``chorus mcp serve``, the broker in
``CHORUS_BOOTSTRAP_SERVERS``) and as ``python -m`` with ``--vitals-*`` options, on a real
broker and a fresh topic, and look at it only through the official MCP client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from chorus_agents.icu.clinical_server import create_server
from chorus_agents.icu.devices import DeviceGateway
from chorus_agents.icu.generator import TOPIC, Vital
from chorus_agents.icu.vitals_feed import (
    BOOTSTRAP_ENV,
    START_ENV,
    TOPIC_ENV,
    FeedConfig,
    MalformedVital,
    VitalsFeed,
    parse_vital,
)
from mcp.client.client import Client

from tests.services.base import free_port
from tests.services.kafka import KafkaBroker, create_topics

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHORUS = str(Path(sys.executable).with_name("chorus"))


def vital(patient: str, parameter: str, value: float, minute: int = 0) -> dict[str, Any]:
    """A record as the generator writes it."""
    return Vital(patient, parameter, value, T0.replace(minute=minute)).record()


def encoded(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


# --- unit ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_generator_record_is_a_vital() -> None:
    parsed = parse_vital(encoded(vital("pt-002", "spo2", 95.0, minute=3)))
    assert (parsed.patient_id, parsed.parameter, parsed.value) == ("pt-002", "spo2", 95.0)
    assert parsed.event_time == "2026-01-05 09:03:00.000"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (encoded({**vital("pt-001", "pulse", 80), "patient_id": None}), "missing_field"),
        (encoded({k: v for k, v in vital("pt-001", "pulse", 80).items() if k != "parameter"}),
         "missing_field"),
        (encoded({**vital("pt-001", "pulse", 80), "value": "80"}), "bad_value"),
        (encoded({**vital("pt-001", "pulse", 80), "value": True}), "bad_value"),
        (b'{"patient_id": "pt-001", "parameter": "pulse", "value": NaN, '
         b'"event_time": "2026-01-05 09:00:00.000"}', "bad_value"),
        (encoded({**vital("pt-001", "pulse", 80), "event_time": "yesterday"}), "bad_event_time"),
    ],
)  # fmt: skip
def test_a_malformed_record_is_refused_with_its_reason(value: bytes | None, rule: str) -> None:
    with pytest.raises(MalformedVital) as refused:
        parse_vital(value)
    assert refused.value.rule == rule


@pytest.mark.unit
def test_handle_observes_raises_alarms_and_counts_what_it_skips(
    caplog: pytest.LogCaptureFixture,
) -> None:
    devices = DeviceGateway(["pt-001", "pt-002"])
    feed = VitalsFeed(devices, FeedConfig("unused:9092"))
    assert feed.handle(encoded(vital("pt-002", "pulse", 82)), "icu.vitals[0]@0")
    assert feed.handle(encoded(vital("pt-002", "spo2", 86, minute=1)), "icu.vitals[0]@1")
    assert not feed.handle(b"{not json", "icu.vitals[0]@2")
    assert not feed.handle(encoded(vital("pt-404", "pulse", 70)), "icu.vitals[1]@0")
    assert not feed.handle(encoded(vital("pt-001", "glucose", 5)), "icu.vitals[1]@1")

    assert devices.latest("pt-002")["pulse"].value == 82
    assert devices.latest("pt-002")["spo2"].time == "2026-01-05 09:01:00.000"
    assert [(a.patient_id, a.parameter, a.value) for a in devices.alarms()] == [
        ("pt-002", "spo2", 86.0)
    ]
    status = feed.status()
    assert (status["records"], status["observed"], status["alarms_raised"]) == (5, 2, 1)
    assert status["skipped"] == 3
    assert status["skipped_by_reason"] == {
        "not_json": 1,
        "unknown_parameter": 1,
        "unknown_patient": 1,
    }
    assert status["last_skipped"]["where"] == "icu.vitals[1]@1"
    skipped = [r.getMessage() for r in caplog.records if "record skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert "icu.vitals[0]@2: record skipped (not_json)" in skipped[0]


@pytest.mark.unit
def test_the_environment_turns_the_feed_on_and_names_topic_and_start() -> None:
    assert FeedConfig.from_env({}) is None
    assert FeedConfig.from_env({BOOTSTRAP_ENV: " "}) is None
    assert FeedConfig.from_env({BOOTSTRAP_ENV: "kafka:9092"}) == FeedConfig(
        "kafka:9092", TOPIC, "latest"
    )
    config = FeedConfig.from_env(
        {BOOTSTRAP_ENV: "kafka:9092", TOPIC_ENV: "ward7.vitals", START_ENV: "earliest"}
    )
    assert config == FeedConfig("kafka:9092", "ward7.vitals", "earliest")
    with pytest.raises(ValueError, match=START_ENV):
        FeedConfig.from_env({BOOTSTRAP_ENV: "kafka:9092", START_ENV: "yesterday"})


@pytest.mark.integration
@pytest.mark.anyio
async def test_without_a_broker_the_server_has_no_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    async with Client(create_server()) as client:
        status = await client.call_tool("get_vitals_feed_status", {})
        vitals = await client.call_tool("get_latest_vitals", {"patient_id": "pt-001"})
    assert status.structured_content == {"enabled": False}
    assert vitals.structured_content is not None
    assert vitals.structured_content["vitals"] == {}


# --- integration: the server on a real broker ----------------------------------------------


def fresh_topic(kafka: KafkaBroker) -> str:
    topic = f"icu.vitals.test-{uuid.uuid4().hex[:10]}"
    create_topics(kafka, [topic])
    return topic


def produce(kafka: KafkaBroker, topic: str, values: Sequence[tuple[str, bytes]]) -> None:
    from confluent_kafka import Producer

    producer = Producer(kafka.client_config(**{"enable.idempotence": True}))
    for key, value in values:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0, f"{topic}: records not delivered"


@contextmanager
def server_process(
    args: Sequence[str], env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The clinical server as a process on a free port; its URL once it lists its tools."""
    port = free_port()
    command = [*args, "--port", str(port), "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (BOOTSTRAP_ENV, TOPIC_ENV, START_ENV)}
    return {**env, **extra}


async def until(
    check: Callable[[], Awaitable[Any]],
    what: str,
    *,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 60.0,
) -> Any:
    """Polls ``check`` until it answers something truthy; fails at the deadline (or when the
    server exited) with the last answer or error and the server's log."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        try:
            last = await check()
        except Exception as exc:  # the server is still starting
            last = exc
        else:
            if last:
                return last
        await anyio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s; last: {last!r}\n{log.read_text()}")


async def call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    async with Client(url) as client:
        result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, f"{tool}: {result.content}"
    return result.structured_content


@pytest.mark.integration
@pytest.mark.anyio
async def test_the_tool_server_tails_the_vitals_and_skips_a_malformed_record(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = fresh_topic(kafka)
    records = [
        vital("pt-002", "pulse", 84, minute=0),
        vital("pt-002", "systolic_bp", 118, minute=0),
        vital("pt-002", "spo2", 95, minute=0),
        vital("pt-002", "spo2", 86, minute=1),  # below 90: an alarm
        vital("pt-003", "temperature", 37.1, minute=1),
    ]
    values = [(r["patient_id"], encoded(r)) for r in records]
    values.insert(2, ("pt-002", b'{"patient_id": "pt-002", "parameter": "pulse", "val'))
    produce(kafka, topic, values)
    env = clean_env(
        **{BOOTSTRAP_ENV: kafka.bootstrap_servers, TOPIC_ENV: topic, START_ENV: "earliest"}
    )
    log = tmp_path / "clinical.log"
    args = [CHORUS, "mcp", "serve", "chorus_agents.icu.clinical_server"]
    with server_process(args, env, log) as (url, process):

        async def read_all() -> Any:
            status = await call(url, "get_vitals_feed_status")
            return status if status["records"] >= len(values) else None

        status = await until(read_all, "every record read", process=process, log=log)
        vitals = await call(url, "get_latest_vitals", {"patient_id": "pt-002"})
        alarms = await call(url, "list_alarms", {"active_only": True})
        other = await call(url, "get_latest_vitals", {"patient_id": "pt-003"})
        assert process.poll() is None, "the server must outlive a malformed record"

    assert status["enabled"] and status["running"] and status["start"] == "earliest"
    assert status["partitions"] == {"0": 0}
    assert (status["records"], status["observed"], status["skipped"]) == (6, 5, 1)
    assert status["skipped_by_reason"] == {"not_json": 1}
    assert status["last_skipped"]["where"] == f"{topic}[0]@2"
    assert status["alarms_raised"] == 1
    assert {p: o["value"] for p, o in vitals["vitals"].items()} == {
        "pulse": 84,
        "spo2": 86,
        "systolic_bp": 118,
    }
    assert vitals["vitals"]["spo2"]["time"] == "2026-01-05 09:01:00.000"
    assert {p: o["value"] for p, o in other["vitals"].items()} == {"temperature": 37.1}
    assert [(a["patient_id"], a["parameter"], a["value"]) for a in alarms["alarms"]] == [
        ("pt-002", "spo2", 86)
    ]
    assert alarms["alarms"][0]["message"] == "spo2 86 below the limit of 90"
    # The SDK logs through rich, which wraps long lines: compare with the spacing collapsed.
    assert "record skipped (not_json): not JSON" in " ".join(log.read_text().split())


@pytest.mark.integration
@pytest.mark.anyio
async def test_by_default_the_feed_starts_at_the_latest_offsets(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = fresh_topic(kafka)
    before = vital("pt-001", "pulse", 150, minute=0)  # would alarm, were it read
    produce(kafka, topic, [("pt-001", encoded(before))])
    log = tmp_path / "clinical.log"
    args = [
        sys.executable,
        "-m",
        "chorus_agents.icu.clinical_server",
        "--vitals-bootstrap-servers",
        kafka.bootstrap_servers,
        "--vitals-topic",
        topic,
    ]
    with server_process(args, clean_env(), log) as (url, process):

        async def assigned() -> Any:
            status = await call(url, "get_vitals_feed_status")
            return status if status["partitions"] else None

        started = await until(assigned, "the partitions assigned", process=process, log=log)
        after = vital("pt-001", "pulse", 71, minute=1)
        produce(kafka, topic, [("pt-001", encoded(after))])

        async def observed() -> Any:
            status = await call(url, "get_vitals_feed_status")
            return status if status["observed"] >= 1 else None

        status = await until(observed, "the new record observed", process=process, log=log)
        vitals = await call(url, "get_latest_vitals", {"patient_id": "pt-001"})
        alarms = await call(url, "list_alarms", {})

    assert started["start"] == "latest" and started["partitions"] == {"0": 1}
    assert (status["records"], status["observed"], status["skipped"]) == (1, 1, 0)
    assert vitals["vitals"]["pulse"]["value"] == 71
    assert alarms["alarms"] == []
