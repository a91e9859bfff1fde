"""``chorus tail <topic>``: the records of a topic, decoded and readable.

Each record is shown with its position, key and headers, then its value as what it is:
an A2A JSON-RPC request (method, message text) or response (task state, artifacts,
error), an audit record (kind, agent, ids, fields), a dead letter (its reason), other
JSON (pretty), or text. ``--json`` prints one JSON object per record instead, for
scripts. Committed records only (read_committed), unless ``--uncommitted``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

import typer
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition
from rich.console import Console
from rich.table import Table

from chorus_agents.audit import SCHEMA as AUDIT_SCHEMA
from chorus_agents.binding.codec import ERROR_REASON, header_map
from chorus_agents.cli.options import BootstrapServers, KafkaOptions, kafka_options


def tail(
    topic: Annotated[str, typer.Argument(help="The topic to read.")],
    bootstrap_servers: BootstrapServers = "localhost:9092",
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record, not the end.")
    ] = False,
    max_records: Annotated[
        int | None, typer.Option("--max", help="Stop after this many records.")
    ] = None,
    idle: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without a record.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
    uncommitted: Annotated[
        bool, typer.Option("--uncommitted", help="Also show records of open transactions.")
    ] = False,
    kafka_option: KafkaOptions = None,
) -> None:
    """Prints the records of TOPIC as they arrive."""
    console = Console(highlight=False, soft_wrap=True)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            **kafka_options(kafka_option),
            "group.id": f"chorus-tail-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted" if uncommitted else "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics[topic]
        if metadata.error is not None:
            console.print(f"[red]error:[/] topic {topic}: {metadata.error.str()}")
            raise typer.Exit(2)
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in sorted(metadata.partitions)])
        shown, last = 0, time.monotonic()
        while max_records is None or shown < max_records:
            if idle is not None and time.monotonic() - last > idle:
                break
            for message in consumer.consume(100, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        console.print(f"[red]kafka:[/] {error.str()}")
                    continue
                last = time.monotonic()
                if as_json:
                    console.print_json(json.dumps(as_dict(message)), indent=None)
                else:
                    show(console, message)
                shown += 1
                if max_records is not None and shown >= max_records:
                    break
    finally:
        consumer.close()


def _value(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return raw.decode("utf-8", errors="replace")


def as_dict(message: Any) -> dict[str, Any]:
    """A record as plain JSON: position, key, headers, value (parsed when JSON)."""
    key = message.key()
    return {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "key": key.decode("utf-8", errors="replace") if key is not None else None,
        "headers": header_map(message.headers()),
        "value": _value(message.value()),
    }


def describe(record: dict[str, Any]) -> tuple[str, Any]:
    """What a record is, in a few words, and the part of it worth showing in full."""
    value, headers = record["value"], record["headers"]
    if ERROR_REASON in headers:
        return (
            f"dead letter: {headers[ERROR_REASON]}: {headers.get('chorus-error-message', '')}",
            value,
        )
    if isinstance(value, dict) and value.get("schema") == AUDIT_SCHEMA:
        ids = ", ".join(
            f"{name}={value[name]}"
            for name in ("task_id", "context_id", "causation_id", "trace_id")
            if value.get(name)
        )
        return (
            f"audit {value.get('kind')} by {value.get('agent')} [{value.get('id')}] {ids}",
            value.get("fields"),
        )
    if isinstance(value, dict) and value.get("jsonrpc") == "2.0":
        if "method" in value:
            params = value.get("params") or {}
            parts = (params.get("message") or {}).get("parts") or []
            text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
            return f"A2A request {value['method']} id={value.get('id')}" + (
                f": {text!r}" if text else ""
            ), None
        if "error" in value:
            error = value["error"] or {}
            return (
                f"A2A error id={value.get('id')} {error.get('code')}: {error.get('message')}",
                None,
            )
        return f"A2A response id={value.get('id')}: {_result_summary(value.get('result'))}", None
    return "", value


def _result_summary(result: Any) -> str:
    if not isinstance(result, dict):
        return "no result"
    for field in ("task", "statusUpdate", "artifactUpdate", "message"):
        if field in result:
            return f"{field} {_brief(result[field])}"
    if "status" in result:
        return f"task {_brief(result)}"
    return ", ".join(sorted(result))


def _brief(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    state = (body.get("status") or {}).get("state")
    if state:
        return str(state).removeprefix("TASK_STATE_").lower()
    artifact = body.get("artifact") or {}
    parts = artifact.get("parts") or body.get("parts") or []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def show(console: Console, message: Any) -> None:
    """One record, for people: a header line, a headers table, the value."""
    record = as_dict(message)
    console.print(
        f"[bold]{record['topic']}[{record['partition']}]@{record['offset']}[/] key={record['key']}"
    )
    summary, body = describe(record)
    if summary:
        console.print(f"  [cyan]{summary}[/]")
    if record["headers"]:
        table = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
        for name, value in record["headers"].items():
            table.add_row(name, value)
        console.print(table)
    if body is not None:
        if isinstance(body, dict | list):
            console.print_json(json.dumps(body))
        else:
            console.print(f"  {body}")
