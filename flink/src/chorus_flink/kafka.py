"""Kafka tables for Flink SQL: the wiring every job shares, kept out of the jobs' SQL.

A job declares its columns and says which topic a table reads or writes; these functions
turn that into the ``CREATE TABLE ... WITH ('connector' = 'kafka', ...)`` DDL of the Flink
Kafka SQL connector, values as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KafkaSettings:
    """Where the topics live, and how to reach them.

    ``properties`` are extra Kafka client settings (``security.protocol``, ``sasl.*``, ...),
    passed to the connector as ``properties.<name>``.
    """

    bootstrap_servers: str
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KafkaSettings:
        """From a job config's ``bootstrap_servers`` and optional ``kafka_properties``."""
        if "bootstrap_servers" not in config:
            raise ValueError("job config: missing 'bootstrap_servers'")
        properties = config.get("kafka_properties", {})
        return cls(
            str(config["bootstrap_servers"]), {str(k): str(v) for k, v in properties.items()}
        )


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A SQL identifier, backquoted so that names like ``key`` and ``value`` work."""
    return "`" + name.replace("`", "``") + "`"


def client_options(kafka: KafkaSettings) -> dict[str, str]:
    """The connector options that reach the cluster: bootstrap servers and ``properties.*``."""
    return _client(kafka)


def create_table(name: str, columns: Sequence[str], options: Mapping[str, str]) -> str:
    """``CREATE TABLE name (columns) WITH (options)``."""
    return _create(name, columns, options)


def _with(options: Mapping[str, str]) -> str:
    return ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in options.items())


def _create(name: str, columns: Sequence[str], options: Mapping[str, str]) -> str:
    body = ",\n  ".join(columns)
    return f"CREATE TABLE {ident(name)} (\n  {body}\n) WITH (\n  {_with(options)}\n)"


def _client(kafka: KafkaSettings) -> dict[str, str]:
    options = {"properties.bootstrap.servers": kafka.bootstrap_servers}
    options.update({f"properties.{k}": v for k, v in kafka.properties.items()})
    return options


def source_table(
    name: str,
    columns: Sequence[str],
    *,
    topic: str,
    kafka: KafkaSettings,
    group_id: str,
    bounded: bool = False,
) -> str:
    """DDL for a table reading JSON values from ``topic`` from its earliest offset.

    ``columns`` may include a ``WATERMARK FOR ...`` clause. A ``bounded`` source stops at
    the offsets that were latest when the job started, so the job finishes by itself (and
    its final watermark fires every open window): that is how tests and replays run.
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        **_client(kafka),
        "properties.group.id": group_id,
        "scan.startup.mode": "earliest-offset",
        "value.format": "json",
        "value.json.fail-on-missing-field": "true",
    }
    if bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return _create(name, columns, options)


def sink_table(
    name: str,
    columns: Sequence[str],
    *,
    topic: str,
    kafka: KafkaSettings,
    key_field: str,
) -> str:
    """DDL for an append-only table writing JSON values to ``topic``, keyed by ``key_field``.

    The record key is the raw string of ``key_field`` (so records of one key stay in one
    partition, in order); the value is the whole row as JSON. Delivery is at least once.
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        **_client(kafka),
        "key.format": "raw",
        "key.fields": key_field,
        "value.format": "json",
        "value.fields-include": "ALL",
        "sink.delivery-guarantee": "at-least-once",
    }
    return _create(name, columns, options)
