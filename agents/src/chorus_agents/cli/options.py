"""Options several commands share: where Kafka is, which namespace, extra client settings."""

from __future__ import annotations

from typing import Annotated, Any

import typer

BootstrapServers = Annotated[
    str,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        envvar="CHORUS_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers (host:port,...).",
    ),
]
Namespace = Annotated[
    str,
    typer.Option("--namespace", "-n", envvar="CHORUS_NAMESPACE", help="The agents' namespace."),
]
KafkaOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--kafka-option",
        "-X",
        help="An extra librdkafka setting, key=value (repeatable), e.g. session.timeout.ms=6000.",
    ),
]


def kafka_options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs as librdkafka settings; a pair without ``=`` is a usage error."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--kafka-option")
        options[key.strip()] = value
    return options
