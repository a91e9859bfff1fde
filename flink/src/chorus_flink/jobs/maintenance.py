"""Predictive maintenance: per-machine rolling statistics, anomaly scores, alerts.

Input (``telemetry_topic``), one JSON object per reading::

    {"machine_id": "press-7", "vibration": 0.42, "temperature": 71.5,
     "event_time": "2026-01-01T09:00:01.000Z"}

Malformed and late readings go to ``dead_letter_topic`` (see :mod:`chorus_flink.deadletter`).

Scoring (:func:`scored_view`):
for each reading, the mean and population standard deviation of each metric over the
machine's previous ``history_readings`` readings (an OVER window of rows ordered by event
time); its z-score is (value - mean) / stddev, and the reading's anomaly score is the larger
|z| of vibration and temperature. A reading is anomalous when it has at least
``min_history`` previous readings and its score exceeds ``z_threshold`` (a stddev below
``min_stddev`` counts as ``min_stddev``, so a flat history does not divide by zero).

Signals (``signals_topic``, envelopes keyed by machine id, see :mod:`chorus_flink.tables`):

``anomaly``
    Each anomalous reading: ``score``, ``vibration``, ``temperature``, their ``*_mean``,
    ``*_stddev`` and ``*_z``, ``readings`` (history size); time = the reading's.
``maintenance_alert``
    ``consecutive_anomalies`` anomalous readings in a row for one machine
    (MATCH_RECOGNIZE; after a match the next one starts after it, so a run of twice that
    length gives two alerts): ``first_time``, ``last_time``, ``max_score``,
    ``anomalies``; time = the last reading's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.deadletter import Field
from chorus_flink.kafka import ident
from chorus_flink.signal_job import Parameters, SignalJob, at_least

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

METRICS = ("vibration", "temperature")

FIELDS = (
    Field("machine_id", "STRING", check="CHAR_LENGTH({}) > 0"),
    Field("vibration", "DOUBLE"),
    Field("temperature", "DOUBLE"),
)

DATA_COLUMNS = (
    "`score` DOUBLE",
    "`readings` BIGINT",
    *(f"`{m}{suffix}` DOUBLE" for m in METRICS for suffix in ("", "_mean", "_stddev", "_z")),
    "`first_time` TIMESTAMP(3)",
    "`last_time` TIMESTAMP(3)",
    "`max_score` DOUBLE",
    "`anomalies` BIGINT",
)


JOB = SignalJob(
    module="chorus_flink.jobs.maintenance",
    domain="maintenance",
    input="telemetry",
    fields=FIELDS,
    data_columns=DATA_COLUMNS,
    own_parameters={
        "history_readings": "20",
        "min_history": "5",
        "z_threshold": "3.0",
        "min_stddev": "0.001",
        "consecutive_anomalies": "3",
    },
)
MODULE = JOB.module

PARAMETERS: Mapping[str, str | None] = JOB.parameters
"""Every parameter and its default, as in the operator's catalogue."""


@dataclass(frozen=True)
class MaintenanceParameters(Parameters):
    """The maintenance job's history and thresholds."""

    history_readings: int = at_least(2)
    min_history: int = at_least(2)
    z_threshold: float = at_least(0.0)
    min_stddev: float = at_least(1e-12)
    consecutive_anomalies: int = at_least(1)


def _stats(metric: str, p: MaintenanceParameters) -> str:
    """SQL: mean, stddev and z of ``metric`` over the previous readings (sums minus current)."""
    m = ident(metric)
    n = "(`n` - 1)"
    mean = f"((`{metric}_sum` - {m}) / {n})"
    variance = f"((`{metric}_sq` - {m} * {m}) / {n} - {mean} * {mean})"
    stddev = f"GREATEST(SQRT(GREATEST({variance}, 0E0)), {p.min_stddev!r})"
    return (
        f"{mean} AS `{metric}_mean`, {stddev} AS `{metric}_stddev`, "
        f"({m} - {mean}) / {stddev} AS `{metric}_z`"
    )


def scored_view(name: str, telemetry: str, p: MaintenanceParameters) -> str:
    """DDL: each reading with its history's statistics, ``score`` and ``anomalous``."""
    sums = ",\n      ".join(
        f"SUM({ident(m)}) OVER w AS `{m}_sum`, SUM({ident(m)} * {ident(m)}) OVER w AS `{m}_sq`"
        for m in METRICS
    )
    stats = ",\n    ".join(_stats(m, p) for m in METRICS)
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT *,
  GREATEST(ABS(`vibration_z`), ABS(`temperature_z`)) AS `score`,
  `readings` >= {p.min_history} AND
    GREATEST(ABS(`vibration_z`), ABS(`temperature_z`)) > {p.z_threshold!r} AS `anomalous`
FROM (
  SELECT `machine_id`, `vibration`, `temperature`, `event_time`, `n` - 1 AS `readings`,
    {stats}
  FROM (
    SELECT `machine_id`, `vibration`, `temperature`, `event_time`,
      {sums},
      COUNT(*) OVER w AS `n`
    FROM {ident(telemetry)}
    WINDOW w AS (
      PARTITION BY `machine_id` ORDER BY `event_time`
      ROWS BETWEEN {p.history_readings} PRECEDING AND CURRENT ROW
    )
  )
  WHERE `n` > 1
)
""".strip()


def anomaly_signals(scored: str) -> str:
    """SQL query: an ``anomaly`` signal per anomalous reading."""
    data = {"score": "`score`", "readings": "`readings`"}
    for m in METRICS:
        for suffix in ("", "_mean", "_stddev", "_z"):
            data[f"{m}{suffix}"] = f"`{m}{suffix}`"
    select = JOB.signal(
        "anomaly",
        subject="`machine_id`",
        time="`event_time`",
        data=data,
    )
    return f"SELECT\n  {select}\nFROM {ident(scored)}\nWHERE `anomalous`"


def alert_signals(scored: str, p: MaintenanceParameters) -> str:
    """SQL query: a ``maintenance_alert`` per run of consecutive anomalous readings."""
    select = JOB.signal(
        "maintenance_alert",
        subject="`machine_id`",
        time="`last_time`",
        data={
            "first_time": "`first_time`",
            "last_time": "`last_time`",
            "max_score": "`max_score`",
            "anomalies": "`anomalies`",
        },
    )
    return f"""
SELECT
  {select}
FROM {ident(scored)}
MATCH_RECOGNIZE (
  PARTITION BY `machine_id`
  ORDER BY `event_time`
  MEASURES
    FIRST(A.`event_time`) AS `first_time`,
    LAST(A.`event_time`) AS `last_time`,
    MAX(A.`score`) AS `max_score`,
    COUNT(A.`score`) AS `anomalies`
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A{{{p.consecutive_anomalies}}})
  DEFINE A AS A.`anomalous` = TRUE
)
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the telemetry source, the signal and dead-letter sinks around the SQL above."""
    job = JOB.configure(config)
    p = MaintenanceParameters.from_job(job)
    JOB.create_tables(t_env, job)
    t_env.execute_sql(scored_view("scored", JOB.input, p))
    return JOB.statements(t_env, job, [anomaly_signals("scored"), alert_signals("scored", p)])
