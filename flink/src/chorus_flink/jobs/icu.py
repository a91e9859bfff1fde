"""ICU: per-patient NEWS2 early warning score, deterioration and missing vitals.

Input (``vitals_topic``), one JSON object per observation of one parameter::

    {"patient_id": "b7", "parameter": "pulse", "value": 118, "event_time": "2026-01-01T09:00:01Z"}

``parameter`` is one of ``respiration_rate`` (breaths/min), ``spo2`` (%, scale 1),
``supplemental_oxygen`` (``true``/``false``, also ``1``/``0``, ``air``/``o2``),
``systolic_bp`` (mmHg), ``pulse`` (beats/min), ``consciousness`` (AVPU: ``A``, or ``C``
new confusion, ``V``, ``P``, ``U``; or as monitors send it, ``0`` alert and ``1`` any of
C, V, P, U, reported as ``CVPU``) and ``temperature`` (degrees Celsius); ``value`` a JSON
number or string within the parameter's plausible range (:data:`chorus_flink.scoring.news2.
PARAMETERS`). An unknown parameter is ``invalid_field:parameter``, an unreadable or
implausible value ``invalid_field:value``; these, records that are not JSON or lack a field,
and late observations go to ``dead_letter_topic`` (see :mod:`chorus_flink.deadletter`).

**Windows.** Every ``window_seconds`` (the slide) the job looks back ``missing_after_seconds``
(the horizon, a multiple of the slide): a HOP event-time window per patient. In each window
with at least one observation it takes the *latest* value of every parameter (by event
time; for equal times the larger value as text) and, when all seven are present, the NEWS2
score (:mod:`chorus_flink.scoring.news2`, as a Python UDF) and its risk band.

Signals (``signals_topic``, keyed by ``patient_id``, ``time`` = the window's end):

``news2_score``
    A patient's first complete window, and every window whose score differs from the
    previous complete window's: ``score``, ``band``, ``previous_score``, and the seven values
    (``respiration_rate``, ``spo2``, ``supplemental_oxygen``, ``systolic_bp``, ``pulse``,
    ``consciousness``, ``temperature``), ``window_start``, ``window_end``.
``deterioration``
    A complete window whose band is medium or high and higher than the previous complete
    window's (or the first one), or whose score rose by ``rise_threshold`` or more:
    ``score``, ``band``, ``previous_score``, ``previous_band``, ``reason`` (``entered_medium``,
    ``entered_high``, ``score_rise``, comma-separated when both apply).
``missing_vitals``
    A window lacking one or more parameters (none observed within ``missing_after_seconds``),
    when the set of missing parameters differs from the previous window's (so an agent is
    told once, and again when it changes): ``missing`` (comma-separated, chart order),
    ``window_start``, ``window_end``.

A patient with no observation at all in a window has no row in it: a monitor that stops
entirely is not reported here (that needs a timer per patient, not a window).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field
from chorus_flink.kafka import ident, quote
from chorus_flink.scoring import news2
from chorus_flink.signal_job import Parameters, SignalJob, Udf, at_least
from chorus_flink.tables import interval

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

VITALS = tuple(news2.PARAMETERS)
"""The seven parameters, in chart order (also the order of ``missing``)."""

BAND_RANKS = {band.value: band.rank for band in news2.RiskBand}


def value_check(parameter_sql: str) -> str:
    """SQL predicate (``{0}`` = the value as text): the value is valid for its parameter.

    An unknown parameter passes here: the ``parameter`` field's own check rejects it first.
    """
    whens = []
    for name, bounds in news2.PARAMETERS.items():
        if name == news2.CONSCIOUSNESS:
            levels = [news2.AVPU_ALERT, *sorted(news2.AVPU_CVPU), *news2.AVPU_NUMERIC]
            test = f"UPPER(TRIM({{0}})) IN ({', '.join(map(quote, levels))})"
        elif name == news2.SUPPLEMENTAL_OXYGEN:
            words = sorted(news2.OXYGEN_TRUE | news2.OXYGEN_FALSE)
            test = f"LOWER(TRIM({{0}})) IN ({', '.join(map(quote, words))})"
        else:
            assert bounds is not None
            low, high = bounds
            test = f"TRY_CAST(TRIM({{0}}) AS DOUBLE) BETWEEN {low!r} AND {high!r}"
        whens.append(f"WHEN {quote(name)} THEN COALESCE({test}, FALSE)")
    return f"CASE {parameter_sql} " + " ".join(whens) + " ELSE TRUE END"


_PARAMETER = Field(
    "parameter",
    "STRING",
    check="{} IN (" + ", ".join(quote(p) for p in VITALS) + ")",
)
FIELDS = (
    Field("patient_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    _PARAMETER,
    Field("value", "STRING", check=value_check(_PARAMETER.value)),
)

DATA_COLUMNS = (
    "`window_start` TIMESTAMP(3)",
    "`window_end` TIMESTAMP(3)",
    "`score` INT",
    "`band` STRING",
    "`previous_score` INT",
    "`previous_band` STRING",
    "`reason` STRING",
    "`missing` STRING",
    "`respiration_rate` DOUBLE",
    "`spo2` DOUBLE",
    "`supplemental_oxygen` BOOLEAN",
    "`systolic_bp` DOUBLE",
    "`pulse` DOUBLE",
    "`consciousness` STRING",
    "`temperature` DOUBLE",
)


@dataclass(frozen=True)
class IcuParameters(Parameters):
    """The ICU job's windows and thresholds."""

    window_seconds: int = at_least(1)
    missing_after_seconds: int = at_least(1)
    rise_threshold: int = at_least(1)

    def check(self, job: JobConfig) -> None:
        if self.missing_after_seconds % self.window_seconds:
            raise ConfigError(
                f"job {job.job}: config 'missing_after_seconds' ({self.missing_after_seconds})"
                f" must be a multiple of 'window_seconds' ({self.window_seconds})"
            )


# --- the Python UDFs: thin wrappers of the pure NEWS2 functions ----------------------------


def _observation(values: tuple[str | None, ...]) -> news2.Observation | None:
    return news2.observation(dict(zip(VITALS, values, strict=True)))


def news2_score(*values: str | None) -> int | None:
    """UDF: the aggregate score of the seven values (chart order), None if one is missing."""
    found = _observation(values)
    return None if found is None else found.score()


def news2_band_rank(*values: str | None) -> int | None:
    """UDF: the rank of the seven values' risk band (0 low .. 3 high), None if one is missing.

    A rank rather than the name: SQL turns it into the name, and compares ranks.
    """
    found = _observation(values)
    return None if found is None else found.band().rank


JOB = SignalJob(
    module="chorus_flink.jobs.icu",
    domain="icu",
    input="vitals",
    fields=FIELDS,
    data_columns=DATA_COLUMNS,
    own_parameters={
        "window_seconds": "60",
        "missing_after_seconds": "300",
        "rise_threshold": "2",
    },
    udfs=(
        Udf("news2_score", news2_score, ("STRING",) * len(VITALS), "INT"),
        Udf("news2_band_rank", news2_band_rank, ("STRING",) * len(VITALS), "INT"),
    ),
)
MODULE = JOB.module

PARAMETERS: Mapping[str, str | None] = JOB.parameters
"""Every parameter and its default, as in the operator's catalogue."""


# --- the transformation ----------------------------------------------------------------------


def _latest(parameter: str) -> str:
    """SQL aggregate: the latest value of ``parameter`` by event time in the group.

    MAX over ``<fixed-width event time>|<value>`` picks the latest observation (ties: the
    larger value as text); values never contain ``|`` (they passed :func:`value_check`).
    """
    stamped = "CONCAT(DATE_FORMAT(`event_time`, 'yyyy-MM-dd HH:mm:ss.SSS'), '|', TRIM(`value`))"
    return (
        f"SPLIT_INDEX(MAX(CASE WHEN `parameter` = {quote(parameter)} THEN {stamped} END), '|', 1)"
    )


def windows_view(name: str, vitals: str, p: IcuParameters) -> str:
    """DDL: per patient and HOP window, the latest value of each parameter (as text) and
    ``missing``, the absent parameters (comma-separated in chart order, ``''`` if none)."""
    latest = ",\n  ".join(f"{_latest(v)} AS {ident(v)}" for v in VITALS)
    absent = ", ".join(
        f"CASE WHEN COUNT(CASE WHEN `parameter` = {quote(v)} THEN 1 END) = 0 THEN {quote(v)} END"
        for v in VITALS
    )
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT
  `patient_id`, window_start, window_end, window_time,
  {latest},
  COALESCE(CONCAT_WS(',', {absent}), '') AS `missing`
FROM TABLE(
  HOP(TABLE {ident(vitals)}, DESCRIPTOR(`event_time`),
      {interval(p.window_seconds)}, {interval(p.missing_after_seconds)})
)
GROUP BY `patient_id`, window_start, window_end, window_time
""".strip()


def _band_name(rank_sql: str) -> str:
    whens = " ".join(f"WHEN {r} THEN {quote(b)}" for b, r in BAND_RANKS.items())
    return f"CASE {rank_sql} {whens} END"


def scores_view(name: str, windows: str) -> str:
    """DDL: the complete windows with their NEWS2 ``score``, ``band_rank`` and ``band``, and
    the previous complete window's (``previous_score``, ``previous_rank``; NULL for the
    patient's first)."""
    args = ", ".join(ident(v) for v in VITALS)
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT *,
  {_band_name("`band_rank`")} AS `band`,
  CASE WHEN `n` = 2 THEN `score_sum` - `score` END AS `previous_score`,
  CASE WHEN `n` = 2 THEN `rank_sum` - `band_rank` END AS `previous_rank`
FROM (
  SELECT *,
    SUM(`score`) OVER w AS `score_sum`,
    SUM(`band_rank`) OVER w AS `rank_sum`,
    COUNT(*) OVER w AS `n`
  FROM (
    SELECT `patient_id`, window_start, window_end, window_time, {args},
      news2_score({args}) AS `score`,
      news2_band_rank({args}) AS `band_rank`
    FROM {ident(windows)}
    WHERE `missing` = ''
  )
  WINDOW w AS (
    PARTITION BY `patient_id` ORDER BY window_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW
  )
)
""".strip()


def _values() -> dict[str, str]:
    oxygen = ", ".join(map(quote, sorted(news2.OXYGEN_TRUE)))
    found = {}
    for v in VITALS:
        if v == news2.CONSCIOUSNESS:
            numeric = " ".join(
                f"WHEN {quote(k)} THEN {quote(level)}" for k, level in news2.AVPU_NUMERIC.items()
            )
            found[v] = f"CASE UPPER({ident(v)}) {numeric} ELSE UPPER({ident(v)}) END"
        elif v == news2.SUPPLEMENTAL_OXYGEN:
            found[v] = f"LOWER({ident(v)}) IN ({oxygen})"
        else:
            found[v] = f"CAST({ident(v)} AS DOUBLE)"
    return found


def score_signals(scores: str) -> str:
    """SQL query: ``news2_score`` for a patient's first score and every change."""
    select = JOB.signal(
        "news2_score",
        subject="`patient_id`",
        time="window_end",
        data={
            "window_start": "window_start",
            "window_end": "window_end",
            "score": "`score`",
            "band": "`band`",
            "previous_score": "`previous_score`",
            **_values(),
        },
    )
    return f"""
SELECT
  {select}
FROM {ident(scores)}
WHERE `previous_score` IS NULL OR `previous_score` <> `score`
""".strip()


def deterioration_signals(scores: str, p: IcuParameters) -> str:
    """SQL query: ``deterioration`` on entering medium/high, or a rise of ``rise_threshold``."""
    medium = news2.RiskBand.MEDIUM.rank
    entered = (
        f"`band_rank` >= {medium} AND (`previous_rank` IS NULL OR `previous_rank` < `band_rank`)"
    )
    rose = f"`score` - `previous_score` >= {p.rise_threshold}"
    select = JOB.signal(
        "deterioration",
        subject="`patient_id`",
        time="window_end",
        data={
            "window_start": "window_start",
            "window_end": "window_end",
            "score": "`score`",
            "band": "`band`",
            "previous_score": "`previous_score`",
            "previous_band": _band_name("`previous_rank`"),
            "reason": f"CONCAT_WS(',', CASE WHEN {entered} THEN CONCAT('entered_', `band`) END, "
            f"CASE WHEN {rose} THEN 'score_rise' END)",
        },
    )
    return f"""
SELECT
  {select}
FROM {ident(scores)}
WHERE ({entered}) OR COALESCE({rose}, FALSE)
""".strip()


def missing_signals(windows: str) -> str:
    """SQL query: ``missing_vitals`` when a window's set of missing parameters changes."""
    select = JOB.signal(
        "missing_vitals",
        subject="`patient_id`",
        time="window_end",
        data={"window_start": "window_start", "window_end": "window_end", "missing": "`missing`"},
    )
    # Over the previous and this window: MIN <> MAX means the set changed.
    return f"""
SELECT
  {select}
FROM (
  SELECT `patient_id`, window_start, window_end, `missing`,
    MIN(`missing`) OVER w AS `least`,
    MAX(`missing`) OVER w AS `most`,
    COUNT(*) OVER w AS `n`
  FROM {ident(windows)}
  WINDOW w AS (
    PARTITION BY `patient_id` ORDER BY window_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW
  )
)
WHERE `missing` <> '' AND (`n` = 1 OR `least` <> `most`)
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the vitals source, the UDFs, the signal and dead-letter sinks around the SQL."""
    job = JOB.configure(config)
    p = IcuParameters.from_job(job)
    JOB.create_tables(t_env, job)
    t_env.execute_sql(windows_view("vital_windows", JOB.input, p))
    t_env.execute_sql(scores_view("vital_scores", "vital_windows"))
    return JOB.statements(
        t_env,
        job,
        [
            score_signals("vital_scores"),
            deterioration_signals("vital_scores", p),
            missing_signals("vital_windows"),
        ],
    )
