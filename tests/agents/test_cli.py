"""The ``chorus`` command against real Kafka and a real agent process (``chorus agent run``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chorus_agents.cli import app
from chorus_agents.cli.options import kafka_options
from chorus_agents.cli.tail import describe
from chorus_api.runtime import parse_runtime_config
from typer.testing import CliRunner

from tests.agents.conftest import create_agent_topics, create_missing_topics, namespace

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.unit
def test_kafka_options_are_key_value_pairs() -> None:
    assert kafka_options(["a.b=1", "c= x"]) == {"a.b": "1", "c": " x"}
    result = runner.invoke(app, ["agent", "run", "--config", "/nonexistent.yaml", "-X", "oops"])
    assert result.exit_code == 2


@pytest.mark.unit
def test_agent_run_names_the_config_problem() -> None:
    result = runner.invoke(app, ["agent", "run", "--config", "/nonexistent/runtime.yaml"])
    assert result.exit_code == 2
    assert "/nonexistent/runtime.yaml" in result.output


@pytest.mark.unit
def test_tail_describes_a2a_audit_and_dead_letters() -> None:
    request = {
        "value": {
            "jsonrpc": "2.0",
            "id": "r1",
            "method": "SendMessage",
            "params": {"message": {"parts": [{"text": "hello"}]}},
        },
        "headers": {},
    }
    assert describe(request) == ("A2A request SendMessage id=r1: 'hello'", None)
    response = {
        "value": {
            "jsonrpc": "2.0",
            "id": "r1",
            "result": {"task": {"status": {"state": "TASK_STATE_COMPLETED"}}},
        },
        "headers": {},
    }
    assert describe(response)[0] == "A2A response id=r1: task completed"
    audit = {
        "value": {
            "schema": "chorus.audit/v1",
            "id": "a1",
            "kind": "decision",
            "agent": "ns/x",
            "task_id": "t1",
            "fields": {"action": "buy"},
        },
        "headers": {},
    }
    assert describe(audit) == ("audit decision by ns/x [a1] task_id=t1", {"action": "buy"})
    dead = {"value": "junk", "headers": {"chorus-error-reason": "invalid-json"}}
    assert describe(dead)[0].startswith("dead letter: invalid-json")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def agent_process(kafka: Any, card_topic: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A scripted agent run by ``chorus agent run`` in its own process, ready."""
    ns = namespace()
    port = _free_port()
    document = {
        "agent": {"namespace": ns, "name": "scribe"},
        "kafka": {"bootstrapServers": kafka.bootstrap_servers},
        "handler": "tests.agents.conftest:ScriptExecutor",
        "http": {"host": "127.0.0.1", "port": port},
        "instance": "replica-0",
    }
    config = parse_runtime_config(document)
    create_agent_topics(kafka, config)
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(document))
    log = tmp_path / "agent.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("chorus")), "agent", "run", "--config", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield {"ns": ns, "config": config, "port": port, "process": process, "log": log}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


@pytest.mark.integration
def test_send_shows_the_task_as_it_goes_and_tail_reads_it_back(
    kafka: Any, agent_process: dict[str, Any]
) -> None:
    ns, config = agent_process["ns"], agent_process["config"]
    common = ["--namespace", ns, "--bootstrap-servers", kafka.bootstrap_servers]

    streamed = runner.invoke(app, ["send", "scribe", "stream 3", "--stream", *common])
    assert streamed.exit_code == 0, streamed.output
    lines = streamed.output.splitlines()
    assert lines[0].startswith("submitted task ")
    assert lines[1] == "working"
    assert [line for line in lines if line.startswith("artifact")] == [
        "artifact chunks: chunk 0;",
        "artifact chunks: chunk 1;",
        "artifact chunks: chunk 2;",
    ]
    assert lines[-1] == "completed"

    unary = runner.invoke(app, ["send", "scribe", "echo hi", *common])
    assert unary.exit_code == 0, unary.output
    assert "artifact echo: echo: hi" in unary.output
    assert "completed task" in unary.output

    failed = runner.invoke(app, ["send", "scribe", "fail", *common])
    assert failed.exit_code == 1, failed.output
    assert "asked to fail" in failed.output

    missing = runner.invoke(app, ["send", "nobody", "hi", *common])
    assert missing.exit_code == 2
    assert f"no agent {ns}/nobody" in missing.output

    requests = runner.invoke(
        app,
        [
            "tail",
            config.topics.inbox,
            "--from-beginning",
            "--max",
            "3",
            "-b",
            kafka.bootstrap_servers,
        ],
    )
    assert requests.exit_code == 0, requests.output
    assert "A2A request SendStreamingMessage" in requests.output
    assert "'stream 3'" in requests.output
    assert requests.output.count("A2A request SendStreamingMessage") == 3
    assert "'echo hi'" in requests.output

    audit = runner.invoke(
        app,
        [
            "tail",
            config.topics.audit,
            "--from-beginning",
            "--json",
            "--idle",
            "5",
            "-b",
            kafka.bootstrap_servers,
        ],
    )
    assert audit.exit_code == 0, audit.output
    records = [json.loads(line) for line in audit.output.splitlines() if line.strip()]
    kinds = [r["value"]["kind"] for r in records]
    assert kinds.count("message.received") == 3
    assert kinds.count("reply.sent") == 3
    assert {r["value"]["agent"] for r in records} == {f"{ns}/scribe"}

    metrics = httpx.get(f"http://127.0.0.1:{agent_process['port']}/metrics", timeout=5).text
    assert 'chorus_handled_total{outcome="ok",source="message"} 2.0' in metrics
    assert 'chorus_handled_total{outcome="error",source="message"} 1.0' in metrics

    process = agent_process["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, agent_process["log"].read_text()
    logged = [
        json.loads(line)
        for line in agent_process["log"].read_text().splitlines()
        if line.startswith("{")
    ]
    assert logged and all(line["agent"] == f"{ns}/scribe" for line in logged)
    assert any("stopping" in line["event"] for line in logged)


@pytest.mark.integration
def test_tail_prints_records_as_they_arrive(kafka: Any) -> None:
    topic = f"{namespace()}.things"
    create_missing_topics(kafka, [topic], partitions=1)
    from confluent_kafka import Producer

    producer = Producer(kafka.client_config())
    producer.produce(topic, key="k1", value=json.dumps({"a": 1}), headers=[("h", b"v")])
    producer.produce(topic, key="k2", value=b"plain text")
    assert producer.flush(10) == 0
    result = runner.invoke(
        app, ["tail", topic, "--from-beginning", "--max", "2", "-b", kafka.bootstrap_servers]
    )
    assert result.exit_code == 0, result.output
    assert f"{topic}[0]@0 key=k1" in result.output
    assert '"a": 1' in result.output
    assert "key=k1 h v {" in " ".join(result.output.split())
    assert f"{topic}[0]@1 key=k2" in result.output
    assert "plain text" in result.output
