"""City traffic: flow and speed per road segment, congestion, and correlated incidents.

Input (``readings_topic``), one JSON object per loop-detector reading::

    {"segment_id": "s2", "vehicle_count": 14, "avg_speed_kmh": 18.5, "event_time": "..."}

``vehicle_count`` is a whole number >= 0 (the vehicles that crossed the detector since its
last reading), ``avg_speed_kmh`` their mean speed, 0 to 300. Anything else, and late
readings, go to ``dead_letter_topic`` (see :mod:`chorus_flink.deadletter`).

**Topology.** ``neighbours`` is a JSON object from a segment id to the ids of the segments
adjacent to it (``{"s1": ["s2"], "s2": ["s3"]}``); adjacency is symmetric however it is
written (:mod:`chorus_flink.scoring.traffic`). It is part of the job's config: a changed
road network is a redeploy, like any other config change.

Signals (``signals_topic``, ``time`` = the window's end), per tumbling event-time window of
``window_seconds``:

``congestion``
    Keyed by ``segment_id``: a segment whose vehicle-weighted mean speed is below
    ``speed_ratio`` x ``free_flow_kmh`` with at least ``min_vehicles`` vehicles counted:
    ``segment_id``, ``vehicles``, ``flow_per_hour`` (vehicles x 3600 / window),
    ``mean_speed_kmh``, ``speed_ratio`` (mean / free flow), ``window_start``, ``window_end``.
``incident``
    Keyed by ``<a>+<b>``: two *adjacent* segments congested in the same window (an event
    time window join), one signal per pair with ``a < b``: ``segments`` [a, b],
    ``mean_speeds_kmh`` [of a, of b], ``vehicles`` (both together), ``window_start``,
    ``window_end``. Three congested segments in a row are two incidents (a-b, b-c): the
    agent sees both ids of each and can merge them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field
from chorus_flink.kafka import ident, quote
from chorus_flink.scoring.traffic import TopologyError, neighbour_pairs, parse_neighbours
from chorus_flink.signal_job import Parameters, SignalJob, at_least
from chorus_flink.tables import interval

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

FIELDS = (
    Field("segment_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    Field("vehicle_count", "BIGINT", check="{} >= 0"),
    Field("avg_speed_kmh", "DOUBLE", check="{0} >= 0 AND {0} <= 300"),
)

DATA_COLUMNS = (
    "`window_start` TIMESTAMP(3)",
    "`window_end` TIMESTAMP(3)",
    "`segment_id` STRING",
    "`vehicles` BIGINT",
    "`flow_per_hour` DOUBLE",
    "`mean_speed_kmh` DOUBLE",
    "`speed_ratio` DOUBLE",
    "`segments` ARRAY<STRING>",
    "`mean_speeds_kmh` ARRAY<DOUBLE>",
)


JOB = SignalJob(
    module="chorus_flink.jobs.traffic",
    domain="traffic",
    input="readings",
    fields=FIELDS,
    data_columns=DATA_COLUMNS,
    own_parameters={
        "window_seconds": "60",
        "free_flow_kmh": "50",
        "speed_ratio": "0.5",
        "min_vehicles": "10",
        "neighbours": "{}",
    },
)
MODULE = JOB.module

PARAMETERS: Mapping[str, str | None] = JOB.parameters
"""Every parameter and its default, as in the operator's catalogue."""


@dataclass(frozen=True)
class TrafficParameters(Parameters):
    """The traffic job's window, congestion rule and topology (``pairs``, from ``neighbours``)."""

    pairs: tuple[tuple[str, str], ...]
    window_seconds: int = at_least(1)
    free_flow_kmh: float = at_least(1.0)
    speed_ratio: float = at_least(0.0)
    min_vehicles: int = at_least(1)

    @classmethod
    def derived(cls, job: JobConfig) -> dict[str, Any]:
        try:
            pairs = neighbour_pairs(parse_neighbours(job.text("neighbours")))
        except TopologyError as exc:
            raise ConfigError(f"job {job.job}: config {exc}") from None
        return {"pairs": tuple(pairs)}


def segment_windows_view(name: str, readings: str, p: TrafficParameters) -> str:
    """DDL: per segment and tumbling window, vehicles, flow and vehicle-weighted mean speed
    (NULL when no vehicle was counted), and ``congested``."""
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT *,
  COALESCE(`mean_speed_kmh` < {p.speed_ratio * p.free_flow_kmh!r}
    AND `vehicles` >= {p.min_vehicles}, FALSE) AS `congested`
FROM (
  SELECT `segment_id`, window_start, window_end, window_time,
    SUM(`vehicle_count`) AS `vehicles`,
    SUM(`vehicle_count`) * 3600.0 / {p.window_seconds} AS `flow_per_hour`,
    SUM(`vehicle_count` * `avg_speed_kmh`) / NULLIF(CAST(SUM(`vehicle_count`) AS DOUBLE), 0)
      AS `mean_speed_kmh`
  FROM TABLE(
    TUMBLE(TABLE {ident(readings)}, DESCRIPTOR(`event_time`), {interval(p.window_seconds)})
  )
  GROUP BY `segment_id`, window_start, window_end, window_time
)
""".strip()


def congestion_signals(windows: str, p: TrafficParameters) -> str:
    """SQL query: one ``congestion`` signal per congested segment and window."""
    select = JOB.signal(
        "congestion",
        subject="`segment_id`",
        time="window_end",
        data={
            "window_start": "window_start",
            "window_end": "window_end",
            "segment_id": "`segment_id`",
            "vehicles": "`vehicles`",
            "flow_per_hour": "`flow_per_hour`",
            "mean_speed_kmh": "`mean_speed_kmh`",
            "speed_ratio": f"`mean_speed_kmh` / {p.free_flow_kmh!r}",
        },
    )
    return f"SELECT\n  {select}\nFROM {ident(windows)}\nWHERE `congested`"


def adjacency(pairs: Sequence[tuple[str, str]], left: str, right: str) -> str:
    """SQL predicate: ``left`` < ``right`` are an adjacent pair (FALSE if there are none)."""
    if not pairs:
        return "FALSE"
    return (
        "(" + " OR ".join(f"({left} = {quote(a)} AND {right} = {quote(b)})" for a, b in pairs) + ")"
    )


def incident_signals(windows: str, p: TrafficParameters) -> str:
    """SQL query: an ``incident`` per adjacent pair congested in the same window.

    A window join: both sides are the window aggregate, joined on the window's bounds, so
    the join keeps no state past a window (a regular join would keep every row forever).
    """
    select = JOB.signal(
        "incident",
        subject="CONCAT(a.`segment_id`, '+', b.`segment_id`)",
        time="a.window_end",
        data={
            "window_start": "a.window_start",
            "window_end": "a.window_end",
            "vehicles": "a.`vehicles` + b.`vehicles`",
            "segments": "ARRAY[a.`segment_id`, b.`segment_id`]",
            "mean_speeds_kmh": "ARRAY[a.`mean_speed_kmh`, b.`mean_speed_kmh`]",
        },
    )
    congested = (
        "(SELECT `segment_id`, window_start, window_end, `vehicles`, `mean_speed_kmh` "
        f"FROM {ident(windows)} WHERE `congested`)"
    )
    return f"""
SELECT
  {select}
FROM {congested} AS a
JOIN {congested} AS b
  ON a.window_start = b.window_start AND a.window_end = b.window_end
  AND {adjacency(p.pairs, "a.`segment_id`", "b.`segment_id`")}
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the readings source, the signal and dead-letter sinks around the SQL above."""
    job = JOB.configure(config)
    p = TrafficParameters.from_job(job)
    JOB.create_tables(t_env, job)
    t_env.execute_sql(segment_windows_view("segment_windows", JOB.input, p))
    queries = [congestion_signals("segment_windows", p)]
    if p.pairs:
        queries.append(incident_signals("segment_windows", p))
    return JOB.statements(t_env, job, queries)
