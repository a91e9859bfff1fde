"""The Flink jobs an Agent's ``streams`` may name, and what each needs.

Shared by the operator (which checks a stream's job and parameters, grants its Kafka user
the topics it reads and writes, and builds its FlinkDeployment) and by ``flink/`` (whose job
modules must match this catalogue; a test compares them). Pure: no Kubernetes, no Flink.

A job's parameters are strings, as in the Agent's ``streams[].config``. Topic parameters say
which way the data flows, so the operator can derive least-privilege ACLs from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chorus_api.agent import Stream, UpgradeMode
from chorus_api.topics import stream_group


class ParameterKind(StrEnum):
    """What a job parameter holds."""

    INPUT_TOPIC = "input-topic"
    OUTPUT_TOPIC = "output-topic"
    VALUE = "value"


@dataclass(frozen=True)
class JobParameter:
    """One parameter of a job; ``default`` None means the stream must set it."""

    name: str
    kind: ParameterKind
    default: str | None
    description: str


@dataclass(frozen=True)
class FlinkJob:
    """A job module in ``flink/src/chorus_flink/jobs`` and the parameters it accepts."""

    module: str
    summary: str
    parameters: tuple[JobParameter, ...]

    def parameter(self, name: str) -> JobParameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def _topic(name: str, kind: ParameterKind, default: str | None, what: str) -> JobParameter:
    return JobParameter(name, kind, default, what)


def _value(name: str, default: str, what: str) -> JobParameter:
    return JobParameter(name, ParameterKind.VALUE, default, what)


IN, OUT = ParameterKind.INPUT_TOPIC, ParameterKind.OUTPUT_TOPIC

_COMMON: tuple[JobParameter, ...] = (
    _value("watermark_delay_seconds", "5", "how late an event may arrive and still count"),
)

JOBS: Mapping[str, FlinkJob] = {
    job.module: job
    for job in (
        FlinkJob(
            "chorus_flink.jobs.windowed_counts",
            "Tumbling event-time counts and sums per key (the harness' smoke job).",
            (
                _topic("source_topic", IN, None, "keyed values"),
                _topic("sink_topic", OUT, None, "one record per key and window"),
                _value("window_seconds", "10", "window length"),
                *_COMMON,
            ),
        ),
        FlinkJob(
            "chorus_flink.jobs.trading",
            "Per-symbol VWAP and volatility; price spikes and volume anomalies.",
            (
                _topic("trades_topic", IN, "trading.trades", "executed trades per symbol"),
                _topic("signals_topic", OUT, "trading.signals", "VWAP, spikes, anomalies"),
                _topic("dead_letter_topic", OUT, "trading.trades.dlq", "malformed trades"),
                *_COMMON,
                _value("window_seconds", "60", "sliding window length"),
                _value("slide_seconds", "10", "how often a window starts (divides the length)"),
                _value("spike_threshold", "0.02", "relative deviation from VWAP that is a spike"),
                _value("baseline_windows", "5", "previous windows a volume is compared with"),
                _value("volume_ratio_threshold", "3.0", "volume / baseline that is an anomaly"),
            ),
        ),
        FlinkJob(
            "chorus_flink.jobs.maintenance",
            "Per-machine rolling statistics, anomaly scores and maintenance alerts.",
            (
                _topic("telemetry_topic", IN, "maintenance.telemetry", "vibration, temperature"),
                _topic("signals_topic", OUT, "maintenance.signals", "anomalies and alerts"),
                _topic("dead_letter_topic", OUT, "maintenance.telemetry.dlq", "malformed"),
                *_COMMON,
                _value("history_readings", "20", "previous readings the statistics cover"),
                _value("min_history", "5", "readings needed before a reading is scored"),
                _value("z_threshold", "3.0", "anomaly score (max |z|) above which it is anomalous"),
                _value("min_stddev", "0.001", "floor of the standard deviation"),
                _value("consecutive_anomalies", "3", "anomalous readings in a row for an alert"),
            ),
        ),
        FlinkJob(
            "chorus_flink.jobs.customer_service",
            "Sentiment trend per conversation; escalation triggers.",
            (
                _topic("messages_topic", IN, "support.messages", "chat messages"),
                _topic("signals_topic", OUT, "support.signals", "escalation triggers"),
                _topic("dead_letter_topic", OUT, "support.messages.dlq", "malformed"),
                *_COMMON,
                _value("trend_messages", "3", "customer messages in the sentiment moving average"),
                _value("drop_threshold", "0.5", "a fall of the trend this large escalates"),
                _value("sentiment_floor", "-0.5", "the trend falling below this escalates"),
                _value("reply_timeout_seconds", "300", "a customer waiting longer escalates"),
                _value(
                    "repeat_contact_seconds",
                    "86400",
                    "a new conversation this soon after the last one is a repeat contact",
                ),
            ),
        ),
        FlinkJob(
            "chorus_flink.jobs.traffic",
            "Flow and speed per road segment; congestion; correlated incidents.",
            (
                _topic("readings_topic", IN, "traffic.readings", "loop detector readings"),
                _topic("signals_topic", OUT, "traffic.signals", "congestion, incidents"),
                _topic("dead_letter_topic", OUT, "traffic.readings.dlq", "malformed"),
                *_COMMON,
                _value("window_seconds", "60", "tumbling window per segment"),
                _value("free_flow_kmh", "50", "free-flow speed of every segment"),
                _value("speed_ratio", "0.5", "congested below this fraction of free flow"),
                _value("min_vehicles", "10", "and with at least this many vehicles per window"),
                _value("neighbours", "{}", "JSON: segment id to the ids of adjacent segments"),
            ),
        ),
        FlinkJob(
            "chorus_flink.jobs.icu",
            "Per-patient NEWS2 early warning score; deterioration; missing vitals.",
            (
                _topic("vitals_topic", IN, "icu.vitals", "vital sign observations"),
                _topic("signals_topic", OUT, "icu.signals", "scores and alerts"),
                _topic("dead_letter_topic", OUT, "icu.vitals.dlq", "malformed"),
                *_COMMON,
                _value("window_seconds", "60", "how often each patient is scored"),
                _value(
                    "missing_after_seconds",
                    "300",
                    "look-back for the latest values; a parameter absent this long is missing",
                ),
                _value("rise_threshold", "2", "a NEWS2 rise this large is a deterioration"),
            ),
        ),
    )
}
"""Every job a stream may run, by module."""

RESERVED_PARAMETERS = frozenset({"bootstrap_servers", "group_id", "kafka_properties", "bounded"})
"""Set by whoever runs the job (the operator, the harness), never by a stream's config."""


class StreamError(ValueError):
    """A stream names a job that does not exist, or a parameter its job does not take.

    ``reason`` is a CamelCase condition reason (``UnknownStreamJob``, ``InvalidStreamConfig``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedStream:
    """A stream with its job looked up and its parameters completed from the defaults."""

    stream: Stream
    job: FlinkJob
    config: Mapping[str, str] = field(default_factory=dict)

    def _topics(self, kind: ParameterKind) -> tuple[str, ...]:
        return tuple(sorted({self.config[p.name] for p in self.job.parameters if p.kind is kind}))

    @property
    def inputs(self) -> tuple[str, ...]:
        """The topics the job reads."""
        return self._topics(ParameterKind.INPUT_TOPIC)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The topics the job writes."""
        return self._topics(ParameterKind.OUTPUT_TOPIC)


def resolve_stream(stream: Stream, jobs: Mapping[str, FlinkJob] = JOBS) -> ResolvedStream:
    """Look up ``stream.job`` and fill in defaults; raise :class:`StreamError` naming the field."""
    job = jobs.get(stream.job)
    if job is None:
        known = ", ".join(sorted(jobs))
        raise StreamError(
            "UnknownStreamJob",
            f"stream {stream.name!r}: job {stream.job!r} does not exist (known: {known})",
        )
    problems: list[str] = []
    for name in sorted(stream.config):
        if name in RESERVED_PARAMETERS:
            problems.append(f"config.{name} is set by the operator, not the stream")
        elif job.parameter(name) is None:
            problems.append(f"config.{name} is not a parameter of {job.module}")
    config = {p.name: p.default for p in job.parameters if p.default is not None}
    config.update(stream.config)
    problems += [
        f"config.{p.name} is required by {job.module}"
        for p in job.parameters
        if p.name not in config
    ]
    if problems:
        raise StreamError("InvalidStreamConfig", f"stream {stream.name!r}: " + "; ".join(problems))
    return ResolvedStream(stream=stream, job=job, config=config)


# --- the FlinkDeployment -------------------------------------------------------------------

FLINK_VERSION = "v2_2"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
PYTHON_JAR = "local:///opt/flink/opt/flink-python-2.2.1.jar"
"""The flink-python jar (PythonDriver) of the ``flink:2.2.1`` image ``flink/Dockerfile`` uses."""
WATERMARK_EMIT = {"chorus.watermark.emit-strategy": "on-periodic"}
"""Watermarks every ``pipeline.auto-watermark-interval`` (200 ms), Flink's own default, not
after every record (the jobs' default, which the tests need for deterministic lateness): an
eighth less CPU per record in the trading job (docs/benchmarks.md). A record close to the
watermark may then count instead of being a ``late`` dead letter, depending on timing;
nothing is dropped unseen either way (docs/flink.md)."""


@dataclass(frozen=True)
class FlinkRuntime:
    """What the operator knows about where the job runs (not part of the stream's spec)."""

    image: str
    service_account: str = "flink"
    bootstrap_servers: str = "localhost:9092"
    kafka_properties: Mapping[str, str] = field(default_factory=dict)
    """Extra Kafka client properties (security protocol, SASL mechanism, ...), no secrets."""
    env: Sequence[Mapping[str, Any]] = ()
    """Container env entries, such as a password taken from a Secret with ``valueFrom``."""
    checkpoint_interval: str = "10s"
    state_dir: str = "file:///flink-data"


def flink_deployment(
    resolved: ResolvedStream,
    runtime: FlinkRuntime,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The FlinkDeployment (application mode, PythonDriver) that runs ``resolved``."""
    stream = resolved.stream
    job_config: dict[str, Any] = dict(resolved.config)
    job_config["bootstrap_servers"] = runtime.bootstrap_servers
    job_config["group_id"] = stream_group(namespace, name)
    if runtime.kafka_properties:
        job_config["kafka_properties"] = dict(runtime.kafka_properties)
    upgrade_mode = stream.upgrade_mode.value
    flink_configuration = {
        "taskmanager.numberOfTaskSlots": str(max(1, stream.parallelism)),
        "execution.checkpointing.interval": runtime.checkpoint_interval,
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "state.checkpoints.dir": f"{runtime.state_dir}/checkpoints/{namespace}/{name}",
        "state.savepoints.dir": f"{runtime.state_dir}/savepoints/{namespace}/{name}",
        **WATERMARK_EMIT,
    }
    if stream.upgrade_mode is not UpgradeMode.STATELESS:
        flink_configuration["high-availability.type"] = "kubernetes"
        flink_configuration["high-availability.storageDir"] = f"{runtime.state_dir}/ha/{name}"
    container: dict[str, Any] = {"name": "flink-main-container"}
    if runtime.env:
        container["env"] = [dict(e) for e in runtime.env]
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "image": runtime.image,
            "flinkVersion": FLINK_VERSION,
            "serviceAccount": runtime.service_account,
            "flinkConfiguration": flink_configuration,
            "podTemplate": {"spec": {"containers": [container]}},
            "jobManager": {"resource": {"memory": "1024m", "cpu": 0.5}},
            "taskManager": {"resource": {"memory": "1536m", "cpu": 1.0}},
            "job": {
                "jarURI": PYTHON_JAR,
                "entryClass": PYTHON_DRIVER,
                "args": [
                    "-pym",
                    "chorus_flink.run",
                    stream.job,
                    "--config",
                    json.dumps(job_config, sort_keys=True, separators=(",", ":")),
                ],
                "parallelism": stream.parallelism,
                "upgradeMode": upgrade_mode,
                "state": "running",
            },
        },
    }
