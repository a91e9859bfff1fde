"""An Agent's streams: one FlinkDeployment each, through ``chorus_api.streams``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus_api.agent import Stream
from chorus_api.streams import (
    FlinkRuntime,
    ResolvedStream,
    StreamError,
    flink_deployment,
    resolve_stream,
)

from chorus_operator.model.credentials import security_protocol
from chorus_operator.model.errors import SpecInvalid
from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.labels import child_name

STREAMS_READY = "StreamsReady"
STREAM_LABEL = "chorus.dev/stream"


def resolve(stream: Stream, *, who: str) -> ResolvedStream:
    """``stream`` with its job looked up; a bad job or config is :class:`SpecInvalid`."""
    try:
        return resolve_stream(stream)
    except StreamError as exc:
        raise SpecInvalid(STREAMS_READY, exc.reason, f"{who}: streams: {exc}") from None


def deployment_name(agent: str, stream: str) -> str:
    """The FlinkDeployment's name: ``<agent>-<stream>``, at most 45 characters (the Flink
    operator derives Service names from it)."""
    return child_name(agent, stream, max_length=45)


def stream_deployment(
    resolved: ResolvedStream,
    settings: OperatorSettings,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    kafka_user: str | None,
    remote: bool,
) -> dict[str, Any]:
    """The FlinkDeployment of one stream, owned by the Agent.

    Kafka credentials: with SCRAM and the KafkaUser's Secret in this namespace, the JAAS
    config comes from that Secret as an env var (``KAFKA_SASL_JAAS_CONFIG``); a Secret in
    another namespace cannot reach a Flink pod without a copy, so it is left out there.
    """
    protocol = security_protocol(settings)
    properties: dict[str, str] = {}
    env: list[dict[str, Any]] = []
    if protocol.value != "PLAINTEXT":
        properties["security.protocol"] = protocol.value
    if settings.kafka_authentication == "scram-sha-512":
        properties["sasl.mechanism"] = "SCRAM-SHA-512"
        if kafka_user is not None and not remote:
            env.append(
                {
                    "name": "KAFKA_SASL_JAAS_CONFIG",
                    "valueFrom": {"secretKeyRef": {"name": kafka_user, "key": "sasl.jaas.config"}},
                }
            )
    runtime = FlinkRuntime(
        image=settings.flink_image,
        service_account=settings.flink_service_account,
        bootstrap_servers=settings.bootstrap_servers,
        kafka_properties=properties,
        env=env,
    )
    manifest = flink_deployment(
        resolved, runtime, name=name, namespace=namespace, labels=dict(labels)
    )
    manifest["metadata"]["ownerReferences"] = [dict(owner)]
    return manifest
