"""A job's configuration: the stream's ``config`` dict, checked and completed from defaults.

Each job module declares its parameters once, with the same names and defaults as its entry
in the operator's catalogue (``chorus_api.streams.JOBS``; a test compares the two)::

    PARAMETERS = {
        "trades_topic": "trading.trades",
        "signals_topic": "trading.signals",
        "dead_letter_topic": "trading.trades.dlq",
        "watermark_delay_seconds": "5",
        "window_seconds": "60",
    }

    def build(t_env, config):
        job = JobConfig.parse("chorus_flink.jobs.trading", config, PARAMETERS)
        job.text("trades_topic"), job.integer("window_seconds", minimum=1), job.kafka, ...

A default of ``None`` means the stream must set the parameter. Besides its parameters, a
config may hold the keys the runner sets (:data:`RESERVED`): ``bootstrap_servers``
(required), ``group_id``, ``kafka_properties`` and ``bounded``. Any other key is an error, so
a misspelt parameter fails the job instead of being ignored. Errors name the job and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chorus_flink.kafka import KafkaSettings

RESERVED = frozenset({"bootstrap_servers", "group_id", "kafka_properties", "bounded"})
"""Keys set by whoever runs the job (the operator, the test harness), not by the stream."""


class ConfigError(ValueError):
    """A job's config is missing a key, has an unknown one, or a value of the wrong kind."""


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", ""}:
        return False
    return None


@dataclass(frozen=True)
class JobConfig:
    """The checked config of one job run.

    ``values`` holds every parameter as a string (defaults filled in); the typed accessors
    convert and check them. ``group_id`` defaults to ``chorus-flink.<job's short name>``.
    """

    job: str
    values: Mapping[str, str]
    kafka: KafkaSettings
    group_id: str
    bounded: bool

    @classmethod
    def parse(
        cls, job: str, config: Mapping[str, Any], parameters: Mapping[str, str | None]
    ) -> JobConfig:
        """Checks ``config`` against ``parameters`` (name to default, None if required)."""
        unknown = sorted(k for k in config if k not in parameters and k not in RESERVED)
        if unknown:
            raise ConfigError(
                f"job {job}: config {', '.join(map(repr, unknown))} "
                f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                f"(known: {', '.join(sorted(parameters))})"
            )
        values: dict[str, str] = {}
        for name, default in parameters.items():
            value = config.get(name, default)
            if value is None:
                raise ConfigError(f"job {job}: config is missing {name!r}")
            if isinstance(value, dict | list):
                raise ConfigError(f"job {job}: config {name!r} must be a string, got {value!r}")
            values[name] = str(value)
        if "bootstrap_servers" not in config:
            raise ConfigError(f"job {job}: config is missing 'bootstrap_servers'")
        properties = config.get("kafka_properties", {})
        if not isinstance(properties, Mapping):
            raise ConfigError(f"job {job}: config 'kafka_properties' must be an object")
        bounded = _boolean(config.get("bounded", False))
        if bounded is None:
            raise ConfigError(f"job {job}: config 'bounded' must be true or false")
        try:
            kafka = KafkaSettings.from_config(config)
        except ValueError as exc:
            raise ConfigError(f"job {job}: {exc}") from None
        return cls(
            job=job,
            values=values,
            kafka=kafka,
            group_id=str(config.get("group_id") or f"chorus-flink.{job.rsplit('.', 1)[-1]}"),
            bounded=bounded,
        )

    @property
    def short_name(self) -> str:
        """The job module's last component (``trading``)."""
        return self.job.rsplit(".", 1)[-1]

    def text(self, name: str) -> str:
        """Parameter ``name``, a non-empty string."""
        value = self._get(name)
        if not value.strip():
            raise ConfigError(f"job {self.job}: config {name!r} must not be empty")
        return value

    def integer(self, name: str, *, minimum: int | None = None) -> int:
        """Parameter ``name`` as an integer, at least ``minimum``."""
        value = self._get(name)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(
                f"job {self.job}: config {name!r} = {value!r} is not an integer"
            ) from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"job {self.job}: config {name!r} = {number} is below {minimum}")
        return number

    def number(self, name: str, *, minimum: float | None = None) -> float:
        """Parameter ``name`` as a finite float, at least ``minimum``."""
        value = self._get(name)
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"job {self.job}: config {name!r} = {value!r} is not a number"
            ) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"job {self.job}: config {name!r} = {value!r} is not finite")
        if minimum is not None and number < minimum:
            raise ConfigError(f"job {self.job}: config {name!r} = {number} is below {minimum}")
        return number

    def transactional_id_prefix(self, sink: str) -> str:
        """The Kafka transactional id prefix of one exactly-once sink of this job run.

        Unique per job (its group id) and sink, and stable across restarts, so a job restored
        from a checkpoint finds and aborts its own lingering transactions.
        """
        return f"{self.group_id}.{sink}"

    def _get(self, name: str) -> str:
        if name not in self.values:
            raise ConfigError(f"job {self.job}: {name!r} is not one of its parameters")
        return self.values[name]
