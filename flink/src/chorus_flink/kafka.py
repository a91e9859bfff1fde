"""Kafka tables for Flink SQL: the wiring every job shares, kept out of the jobs' SQL.

A job declares its columns and says which topic a table reads or writes; these functions
turn that into the ``CREATE TABLE ... WITH ('connector' = 'kafka', ...)`` DDL of the Flink
Kafka SQL connector, values as JSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JAAS_ENV = "KAFKA_SASL_JAAS_CONFIG"
"""The environment variable with the job's SASL login, a secret: the operator sets it on a
secured stream's Flink pods from the KafkaUser's Secret (its ``sasl.jaas.config`` key), so it
never appears in the FlinkDeployment's job arguments."""
SHADED = "org.apache.flink.kafka.shaded."
"""Where the Kafka SQL connector jar relocates the Kafka client, its login modules included."""


@dataclass(frozen=True)
class KafkaSettings:
    """Where the topics live, and how to reach them.

    ``properties`` are extra Kafka client settings (``security.protocol``, ``sasl.*``, ...),
    passed to the connector as ``properties.<name>``.
    """

    bootstrap_servers: str
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> KafkaSettings:
        """From a job config's ``bootstrap_servers`` and optional ``kafka_properties``.

        With a ``sasl.mechanism`` and no ``sasl.jaas.config`` among the properties, the login
        comes from :data:`JAAS_ENV`; without it either, this fails here, naming both, rather
        than in the Kafka client once the job is deployed.
        """
        if "bootstrap_servers" not in config:
            raise ValueError("job config: missing 'bootstrap_servers'")
        given = config.get("kafka_properties", {})
        properties = {str(k): str(v) for k, v in given.items()}
        if "sasl.mechanism" in properties and "sasl.jaas.config" not in properties:
            login = environ.get(JAAS_ENV, "").strip()
            if not login:
                raise ValueError(
                    f"config 'kafka_properties' sets sasl.mechanism "
                    f"{properties['sasl.mechanism']} but no sasl.jaas.config, and {JAAS_ENV} "
                    "is not set"
                )
            properties["sasl.jaas.config"] = login
        if "sasl.jaas.config" in properties:
            properties["sasl.jaas.config"] = shaded_login(properties["sasl.jaas.config"])
        return cls(str(config["bootstrap_servers"]), properties)


def shaded_login(jaas: str) -> str:
    """``jaas`` naming the connector jar's relocated login module.

    A KafkaUser's Secret (and any plain Kafka client's config) names
    ``org.apache.kafka.common.security.scram.ScramLoginModule``; inside the SQL connector jar
    that class is under :data:`SHADED`, and JAAS, given the plain name, finds no login
    module ("No LoginModule found") and every Kafka client of the job fails to start.
    """
    text = jaas.strip()
    return SHADED + text if text.startswith("org.apache.kafka.") else text


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
