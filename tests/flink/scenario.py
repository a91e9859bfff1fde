"""Helpers for the Flink job tests: scripted input in, signals and dead letters out.

Each job test produces a scripted stream (good records, malformed ones and late ones) to a
one-partition topic, so the arrival order, and with it the watermark each record sees, is
the script's; :func:`watermarks_before` replays the job's late-data rule in Python.
:meth:`JobScenario.run` does the producing, the bounded run and the reading; the
:class:`Outcome` checks every envelope and compares with :func:`expected` signals.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker, create_topics, read_topic

EPOCH = datetime(1970, 1, 1)


def iso(at: datetime) -> str:
    """The wire format of an event time: ISO-8601 UTC with milliseconds."""
    return at.isoformat(timespec="milliseconds") + "Z"


def kafka_config(kafka: KafkaBroker) -> dict[str, Any]:
    """The reserved keys of a job config that reach the test broker (secured or not)."""
    config: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        properties = {"security.protocol": kafka.security_protocol}
        if kafka.sasl_mechanism:
            module = "org.apache.kafka.common.security.scram.ScramLoginModule"
            properties["sasl.mechanism"] = kafka.sasl_mechanism
            properties["sasl.jaas.config"] = (
                f'{module} required username="{kafka.username}" password="{kafka.password}";'
            )
        config["kafka_properties"] = properties
    return config


@dataclass(frozen=True)
class Topics:
    """A job run's input, signal and dead-letter topics, unique to the test."""

    input: str
    signals: str
    dead_letters: str
    run: str

    @classmethod
    def create(cls, kafka: KafkaBroker, name: str) -> Topics:
        run = uuid.uuid4().hex[:8]
        topics = cls(f"{name}.in.{run}", f"{name}.signals.{run}", f"{name}.dlq.{run}", run)
        create_topics(kafka, [topics.input, topics.signals, topics.dead_letters], partitions=1)
        return topics


def produce(kafka: KafkaBroker, topic: str, values: Iterable[str | None]) -> None:
    """Produces the raw values in order (None is a tombstone)."""
    producer = Producer(kafka.client_config(**{"enable.idempotence": True}))
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def event_time_of(value: str | None) -> datetime:
    """The event time the job reads from a raw value (1970 if it has none), as it does."""
    try:
        record = json.loads(value) if value is not None else None
        text = str(record["event_time"])  # type: ignore[index]
        return datetime.fromisoformat(text.replace("T", " ").replace("Z", ""))
    except (ValueError, TypeError, KeyError):
        return EPOCH


def watermarks_before(values: Sequence[str | None], delay: timedelta) -> list[datetime | None]:
    """The watermark each record meets: max event time of the records before it, minus delay."""
    found: list[datetime | None] = []
    latest: datetime | None = None
    for value in values:
        found.append(None if latest is None else latest - delay)
        at = event_time_of(value)
        latest = at if latest is None else max(latest, at)
    return found


def signals(kafka: KafkaBroker, topic: str) -> list[dict[str, Any]]:
    """Every committed signal, checking each record's key is its envelope's subject."""
    found = []
    for message in read_topic(kafka, topic, isolation="read_committed"):
        value = message.value()
        assert value is not None
        signal = json.loads(value)
        assert message.key() == signal["subject"].encode(), signal
        found.append(signal)
    return found


def dead_letters(kafka: KafkaBroker, topic: str) -> list[tuple[str, str | None]]:
    """Every committed dead letter as (reason, original payload), header checked."""
    found = []
    for message in read_topic(kafka, topic, isolation="read_committed"):
        value = message.value()
        assert value is not None
        letter = json.loads(value)
        headers = dict(message.headers() or [])
        assert headers.get("chorus-dead-letter-reason") == letter["reason"].encode(), letter
        found.append((letter["reason"], letter.get("payload")))
    return found


def close(actual: Any, expected: Any, *, tolerance: float = 1e-6) -> bool:
    """Equal, with floats within ``tolerance`` (relative, or absolute near zero)."""
    if isinstance(expected, float) or isinstance(actual, float):
        if actual is None or expected is None:
            return actual is expected
        return abs(float(actual) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and set(actual) == set(expected)
            and all(close(actual[k], expected[k], tolerance=tolerance) for k in expected)
        )
    return bool(actual == expected)


def assert_signals(actual: list[dict[str, Any]], expected: Mapping[str, Mapping[str, Any]]) -> None:
    """Signals by id: no duplicates, the same ids, and each one's envelope and data close."""
    ids = [s["id"] for s in actual]
    assert len(ids) == len(set(ids)), (
        f"duplicate signals: {sorted(i for i in ids if ids.count(i) > 1)}"
    )
    by_id = {s["id"]: s for s in actual}
    missing, unexpected = sorted(set(expected) - set(by_id)), sorted(set(by_id) - set(expected))
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    for signal_id, want in expected.items():
        got = by_id[signal_id]
        for key, value in want.items():
            assert close(got.get(key), value), (
                f"{signal_id}: {key} = {got.get(key)!r}, expected {value!r}"
            )


def expected(
    kind: str, subject: str, at: datetime, data: Mapping[str, Any], *, id_suffix: str = ""
) -> tuple[str, dict[str, Any]]:
    """An expected signal by id: ``kind:subject:time[:id_suffix]`` and its envelope and data."""
    signal_id = f"{kind}:{subject}:{iso(at)}" + (f":{id_suffix}" if id_suffix else "")
    return signal_id, {"kind": kind, "subject": subject, "time": iso(at), "data": dict(data)}


@dataclass(frozen=True)
class JobScenario:
    """How a job test runs its job: the job, its signal domain and its input parameter."""

    job: str
    domain: str
    input_parameter: str

    @property
    def source(self) -> str:
        """The module, the envelopes' ``source``."""
        return f"chorus_flink.jobs.{self.job}"

    def run(
        self,
        kafka: KafkaBroker,
        flink: FlinkEnv,
        values: Sequence[str | None],
        parameters: Mapping[str, str],
        *,
        timeout: float = 400,
        options: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Produces ``values`` to a new topic, runs the job bounded over them with
        ``parameters`` (fresh topics and group id), and reads what it committed."""
        topics = Topics.create(kafka, self.domain)
        produce(kafka, topics.input, values)
        flink.run_chorus_job(
            self.job,
            {
                **kafka_config(kafka),
                self.input_parameter: topics.input,
                "signals_topic": topics.signals,
                "dead_letter_topic": topics.dead_letters,
                **parameters,
                "bounded": True,
                "group_id": f"test-{self.domain}-{topics.run}",
            },
            options=options,
            timeout=timeout,
        )
        return Outcome(
            self, signals(kafka, topics.signals), dead_letters(kafka, topics.dead_letters)
        )


@dataclass(frozen=True)
class Outcome:
    """What one run committed: its signals and its dead letters as (reason, payload)."""

    scenario: JobScenario
    signals: list[dict[str, Any]]
    dead_letters: list[tuple[str, str | None]]

    def assert_signals(self, expected: Mapping[str, Mapping[str, Any]]) -> None:
        """Every envelope is the job's CloudEvent, and the signals are ``expected`` by id."""
        for signal in self.signals:
            assert signal["specversion"] == "1.0", signal
            assert signal["source"] == self.scenario.source, signal
            assert signal["type"] == f"dev.chorus.{self.scenario.domain}.{signal['kind']}", signal
        assert_signals(self.signals, expected)

    def assert_dead_letters(
        self, expected: Sequence[tuple[str, str | None]], *, in_order: bool = False
    ) -> None:
        """The dead letters are ``expected``: in this order, or as a multiset."""
        if in_order:
            assert self.dead_letters == list(expected)
        else:
            assert sorted(self.dead_letters, key=str) == sorted(expected, key=str)
