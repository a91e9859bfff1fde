"""What every signal job shares: its spec, its typed parameters, its UDFs and its wiring.

A signal job reads one input topic, splits it into usable records and dead letters
(:mod:`chorus_flink.deadletter`) and writes CloudEvents signals (:mod:`chorus_flink.tables`).
Everything but its own SQL follows from a :class:`SignalJob`::

    JOB = SignalJob(
        module="chorus_flink.jobs.trading", domain="trading", input="trades",
        fields=FIELDS, data_columns=DATA_COLUMNS,
        own_parameters={"window_seconds": "60", ...},
    )
    PARAMETERS = JOB.parameters          # trades_topic, signals_topic, ... as in the catalogue

    @dataclass(frozen=True)
    class TradingParameters(Parameters):
        window_seconds: int = at_least(1)

    def build(t_env, config):
        job = JOB.configure(config)
        p = TradingParameters.from_job(job)
        JOB.create_tables(t_env, job)         # view `trades`: the usable, typed records
        t_env.execute_sql(windows_view("trade_windows", "trades", p))
        return JOB.statements(t_env, job, [window_signals("trade_windows", p), ...])

Names, from ``domain`` and ``input``: the parameters ``<input>_topic`` (default
``<domain>.<input>``), ``signals_topic`` (``<domain>.signals``), ``dead_letter_topic``
(``<domain>.<input>.dlq``) and ``watermark_delay_seconds`` (5); the tables ``<input>_raw``,
``<input>_checked``, ``<input>`` (the usable records), ``signals`` and ``dead_letters``;
signal types ``dev.chorus.<domain>.<kind>``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, cast, get_type_hints

from chorus_flink import udf
from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field, dead_letter_insert, register_checked, valid_view
from chorus_flink.tables import (
    dead_letter_sink_table,
    ensure_checkpointing,
    envelope_columns,
    raw_source_table,
    select_list,
    signal_sink_table,
    union_insert,
)

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

SIGNALS = "signals"
DEAD_LETTERS = "dead_letters"
WATERMARK_EMIT = "chorus.watermark.emit-strategy"
"""Flink configuration key: ``on-event`` (the default) or ``on-periodic``, for every source.

``on-event`` emits a watermark after every record, so whether a record is late depends only
on the records before it in its partition (the tests rely on it). ``on-periodic`` emits one
every ``pipeline.auto-watermark-interval`` (200 ms unless set): less work per record, but a
record is late only against the watermark of the last period, so lateness near the
watermark depends on timing."""
WATERMARK_EMIT_STRATEGIES = ("on-event", "on-periodic")


# --- parameters ------------------------------------------------------------------------------


def at_least(minimum: float) -> Any:
    """A :class:`Parameters` field: read from the job's config, at least ``minimum``."""
    return dataclasses.field(metadata={"minimum": minimum})


class Parameters:
    """A job's typed parameters: subclasses are frozen dataclasses of :func:`at_least` fields.

    :meth:`from_job` reads each field from the config by its type (``int`` with
    :meth:`JobConfig.integer`, ``float`` with :meth:`JobConfig.number`, ``str`` with
    :meth:`JobConfig.text`), in field order, so the first bad value is the one reported. The
    defaults live in the job's ``PARAMETERS`` only. :meth:`derived` supplies fields that are
    not plain config values; :meth:`check` tests rules across fields.
    """

    @classmethod
    def from_job(cls, job: JobConfig) -> Self:
        """The parameters of ``job``; :class:`chorus_flink.config.ConfigError` naming the key."""
        values = cls.derived(job)
        types = get_type_hints(cls)
        for field in dataclasses.fields(cast(Any, cls)):
            if field.name in values:
                continue
            minimum = field.metadata.get("minimum")
            kind = types[field.name]
            if kind is int:
                values[field.name] = job.integer(
                    field.name, minimum=None if minimum is None else int(minimum)
                )
            elif kind is float:
                values[field.name] = job.number(
                    field.name, minimum=None if minimum is None else float(minimum)
                )
            elif kind is str:
                values[field.name] = job.text(field.name)
            else:
                raise TypeError(f"{cls.__name__}.{field.name}: no reader for {kind!r}")
        found: Self = cast(Any, cls)(**values)
        found.check(job)
        return found

    @classmethod
    def derived(cls, job: JobConfig) -> dict[str, Any]:
        """Fields computed from the config rather than read as they are; none by default."""
        return {}

    def check(self, job: JobConfig) -> None:
        """Raises ``ConfigError`` if the values break a rule across fields; none by default."""


# --- Python UDFs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Udf:
    """A Python scalar function the job's SQL calls by ``name``.

    ``input_types`` and ``result_type`` are Flink SQL type names (``STRING``, ``DOUBLE``).
    """

    name: str
    function: Callable[..., Any]
    input_types: tuple[str, ...]
    result_type: str


def use_this_python(t_env: StreamTableEnvironment) -> None:
    """Python workers run this interpreter, unless the runner chose one.

    Without it a local mini-cluster's workers run whatever ``python`` is on PATH, which
    lacks the job's packages (in the image the two are the same).
    """
    config = t_env.get_config()
    if not config.get("python.executable", ""):
        config.set("python.executable", sys.executable)


def register_udfs(t_env: StreamTableEnvironment, udfs: Sequence[Udf]) -> None:
    """Registers ``udfs`` as temporary functions, workers running this interpreter."""
    if not udfs:
        return
    from pyflink.table.udf import udf

    use_this_python(t_env)
    for u in udfs:
        t_env.create_temporary_function(
            u.name,
            udf(u.function, input_types=list(u.input_types), result_type=u.result_type),
        )


def watermark_emit(t_env: StreamTableEnvironment, job: JobConfig) -> str:
    """The sources' watermark emit strategy, from :data:`WATERMARK_EMIT` (``on-event``)."""
    strategy = t_env.get_config().get(WATERMARK_EMIT, "") or "on-event"
    if strategy not in WATERMARK_EMIT_STRATEGIES:
        raise ConfigError(
            f"job {job.job}: {WATERMARK_EMIT} = {strategy!r} is not one of "
            f"{', '.join(WATERMARK_EMIT_STRATEGIES)}"
        )
    return strategy


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalJob:
    """One input topic in, signals and dead letters out (see the module docstring).

    ``own_parameters`` are the job's parameters besides the topics and the watermark delay
    (name to default, None when the stream must set it).
    """

    module: str
    domain: str
    input: str
    fields: tuple[Field, ...]
    data_columns: tuple[str, ...]
    own_parameters: Mapping[str, str | None]
    udfs: tuple[Udf, ...] = ()

    @property
    def input_topic(self) -> str:
        """The parameter naming the input topic."""
        return f"{self.input}_topic"

    @property
    def checked(self) -> str:
        """The view of every input record with its ``dead_letter_reason``."""
        return f"{self.input}_checked"

    @property
    def parameters(self) -> dict[str, str | None]:
        """Every parameter and its default, as in the operator's catalogue."""
        return {
            self.input_topic: f"{self.domain}.{self.input}",
            "signals_topic": f"{self.domain}.signals",
            "dead_letter_topic": f"{self.domain}.{self.input}.dlq",
            "watermark_delay_seconds": "5",
            **self.own_parameters,
        }

    def configure(self, config: Mapping[str, Any]) -> JobConfig:
        """The checked config of one run (see :meth:`JobConfig.parse`)."""
        return JobConfig.parse(self.module, config, self.parameters)

    def signal(
        self,
        kind: str,
        *,
        subject: str,
        time: str,
        data: Mapping[str, str],
        id_suffix: str | None = None,
    ) -> str:
        """The SELECT list of one signal of this job (see :meth:`signal_columns`)."""
        return select_list(
            self.signal_columns(kind, subject=subject, time=time, data=data, id_suffix=id_suffix)
        )

    def signal_columns(
        self,
        kind: str,
        *,
        subject: str,
        time: str,
        data: Mapping[str, str],
        id_suffix: str | None = None,
    ) -> list[tuple[str, str]]:
        """:meth:`signal` as (column, SQL expression) pairs, for
        :func:`chorus_flink.tables.either_envelope`."""
        return envelope_columns(
            domain=self.domain,
            source=self.module,
            kind=kind,
            subject=subject,
            time=time,
            data=data,
            data_columns=self.data_columns,
            id_suffix=id_suffix,
        )

    def create_tables(self, t_env: StreamTableEnvironment, job: JobConfig) -> None:
        """Checkpointing, the functions, the source and its views, the signal and dead-letter
        sinks."""
        ensure_checkpointing(t_env)
        udf.register(t_env)  # the source's computed event time already reads the payload
        register_udfs(t_env, self.udfs)
        raw = f"{self.input}_raw"
        t_env.execute_sql(
            raw_source_table(
                raw,
                topic=job.text(self.input_topic),
                job=job,
                watermark_delay_seconds=job.integer("watermark_delay_seconds", minimum=0),
                watermark_emit=watermark_emit(t_env, job),
            )
        )
        register_checked(t_env, self.checked, raw, self.fields)
        t_env.execute_sql(valid_view(self.input, self.checked, self.fields))
        t_env.execute_sql(
            signal_sink_table(SIGNALS, self.data_columns, topic=job.text("signals_topic"), job=job)
        )
        t_env.execute_sql(
            dead_letter_sink_table(DEAD_LETTERS, topic=job.text("dead_letter_topic"), job=job)
        )

    def statements(
        self, t_env: StreamTableEnvironment, job: JobConfig, signal_queries: Sequence[str]
    ) -> StatementSet:
        """The job's two inserts: the dead letters, and every signal query in ONE insert."""
        statements = t_env.create_statement_set()
        statements.add_insert_sql(dead_letter_insert(DEAD_LETTERS, self.checked, job))
        statements.add_insert_sql(union_insert(SIGNALS, signal_queries))
        return statements
