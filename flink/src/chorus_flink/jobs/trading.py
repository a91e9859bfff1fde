"""Trading: per-symbol VWAP and volatility, price spikes and volume anomalies.

Input (``trades_topic``), one JSON object per executed trade::

    {"symbol": "ACME", "price": 101.25, "quantity": 300, "event_time": "2026-01-01T09:00:01.250Z"}

``price`` and ``quantity`` are positive numbers, ``event_time`` an ISO-8601 UTC timestamp.
Anything else goes to ``dead_letter_topic`` (see :mod:`chorus_flink.deadletter`), as do late
trades (at or before the watermark, ``watermark_delay_seconds`` behind the latest trade).

Signals (``signals_topic``, envelopes keyed by symbol, see :mod:`chorus_flink.tables`):

``vwap``
    One per symbol and sliding (HOP) event-time window of ``window_seconds`` every
    ``slide_seconds`` that has trades, at the window's end: ``vwap`` = sum(price x quantity)
    / sum(quantity), ``volatility`` = population standard deviation of the trade prices,
    ``volume`` = sum(quantity), ``trade_count``, ``window_start``, ``window_end``.
``price_spike``
    A trade whose price differs from the VWAP of the same symbol's *earlier* trades within
    the ``window_seconds`` before it by more than ``spike_threshold`` (relative,
    |price - vwap| / vwap): ``price``, ``quantity``, ``vwap``, ``deviation`` (signed).
    Trades with the same event time count as earlier for each other (SQL RANGE peers).
``volume_anomaly``
    A window whose volume is more than ``volume_ratio_threshold`` times the mean volume of
    the symbol's previous ``baseline_windows`` windows with trades (needs that many):
    ``volume``, ``baseline_volume``, ``ratio``, ``window_start``, ``window_end``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field
from chorus_flink.kafka import ident
from chorus_flink.signal_job import Parameters, SignalJob, at_least
from chorus_flink.tables import RECORD_ID, either_envelope, interval

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

FIELDS = (
    Field("symbol", "STRING", check="CHAR_LENGTH({}) > 0"),
    Field("price", "DOUBLE", check="{} > 0"),
    Field("quantity", "DOUBLE", check="{} > 0"),
)

DATA_COLUMNS = (
    "`window_start` TIMESTAMP(3)",
    "`window_end` TIMESTAMP(3)",
    "`vwap` DOUBLE",
    "`volatility` DOUBLE",
    "`volume` DOUBLE",
    "`trade_count` BIGINT",
    "`price` DOUBLE",
    "`quantity` DOUBLE",
    "`deviation` DOUBLE",
    "`baseline_volume` DOUBLE",
    "`ratio` DOUBLE",
)


JOB = SignalJob(
    module="chorus_flink.jobs.trading",
    domain="trading",
    input="trades",
    fields=FIELDS,
    data_columns=DATA_COLUMNS,
    own_parameters={
        "window_seconds": "60",
        "slide_seconds": "10",
        "spike_threshold": "0.02",
        "baseline_windows": "5",
        "volume_ratio_threshold": "3.0",
    },
)
MODULE = JOB.module

PARAMETERS: Mapping[str, str | None] = JOB.parameters
"""Every parameter and its default, as in the operator's catalogue."""


@dataclass(frozen=True)
class TradingParameters(Parameters):
    """The trading job's thresholds and windows."""

    window_seconds: int = at_least(1)
    slide_seconds: int = at_least(1)
    spike_threshold: float = at_least(0.0)
    baseline_windows: int = at_least(1)
    volume_ratio_threshold: float = at_least(0.0)

    def check(self, job: JobConfig) -> None:
        if self.window_seconds % self.slide_seconds:
            raise ConfigError(
                f"job {job.job}: config 'window_seconds' ({self.window_seconds}) must be a "
                f"multiple of 'slide_seconds' ({self.slide_seconds})"
            )


def windows_view(name: str, trades: str, p: TradingParameters) -> str:
    """DDL: per symbol and HOP window, VWAP, volatility, volume, count (rowtime window_time)."""
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT
  `symbol`, window_start, window_end, window_time,
  SUM(`price` * `quantity`) / SUM(`quantity`) AS `vwap`,
  STDDEV_POP(`price`) AS `volatility`,
  SUM(`quantity`) AS `volume`,
  COUNT(*) AS `trade_count`
FROM TABLE(
  HOP(TABLE {ident(trades)}, DESCRIPTOR(`event_time`),
      {interval(p.slide_seconds)}, {interval(p.window_seconds)})
)
GROUP BY `symbol`, window_start, window_end, window_time
""".strip()


def price_spikes(trades: str, p: TradingParameters) -> str:
    """SQL query: the trades far from the VWAP of the same symbol's earlier trades, with
    ``symbol``, ``event_time``, ``source_partition``, ``source_offset``, ``price``,
    ``quantity``, ``vwap`` (of the earlier trades) and ``deviation``.

    ``CHORUS_PRICE_SPIKES`` (``flink/udf``, ``PriceSpikes.java``) gives what an event-time
    ``RANGE`` OVER window would, but keeps running sums: Flink's OVER walks every buffered
    timestamp of the symbol for each new one, which took most of the job's CPU on dense
    symbols. It waits for the watermark, so ``trades`` must have no late rows (the job routes
    them to the dead-letter topic).
    """
    return f"""
SELECT `symbol`, `rowtime` AS `event_time`, `source_partition`, `source_offset`,
  `price`, `quantity`, `vwap`, `deviation`
FROM CHORUS_PRICE_SPIKES(
  trades => TABLE {ident(trades)} PARTITION BY `symbol`,
  window_seconds => {p.window_seconds},
  spike_threshold => CAST({p.spike_threshold!r} AS DOUBLE),
  on_time => DESCRIPTOR(`event_time`),
  uid => 'price-spikes'
)
""".strip()


def price_spike_signals(trades: str, p: TradingParameters) -> str:
    """SQL query: a ``price_spike`` per trade far from the VWAP of the earlier trades."""
    select = JOB.signal(
        "price_spike",
        subject="`symbol`",
        time="`event_time`",
        id_suffix=RECORD_ID,
        data={
            "price": "`price`",
            "quantity": "`quantity`",
            "vwap": "`vwap`",
            "deviation": "`deviation`",
        },
    )
    return f"""
SELECT
  {select}
FROM (
  {price_spikes(trades, p)}
)
""".strip()


def window_signals(windows: str, p: TradingParameters) -> str:
    """SQL query: per window a ``vwap`` signal, and a ``volume_anomaly`` where its volume is
    far above the mean of the symbol's previous windows.

    Both kinds come from one pass over the windows: an OVER on them for the baseline, then
    each window row unnested into ``_kind`` 1 (``vwap``) and 2 (``volume_anomaly``, 0 where
    it does not apply; the array refers to the row, so this is a Correlate chained to the
    OVER, not a join). Written as two queries, the planner built the HOP aggregate twice
    (the two readers used different columns, so it could not reuse one), and every trade
    went through both.
    """
    window_data = {"window_start": "window_start", "window_end": "window_end"}
    vwap = JOB.signal_columns(
        "vwap",
        subject="`symbol`",
        time="window_end",
        data={
            **window_data,
            "vwap": "`vwap`",
            "volatility": "`volatility`",
            "volume": "`volume`",
            "trade_count": "`trade_count`",
        },
    )
    anomaly = JOB.signal_columns(
        "volume_anomaly",
        subject="`symbol`",
        time="window_end",
        data={
            **window_data,
            "volume": "`volume`",
            "baseline_volume": "`baseline_volume`",
            "ratio": "`volume` / `baseline_volume`",
        },
    )
    n = p.baseline_windows
    anomalous = f"`n` = {n + 1} AND `volume` > {p.volume_ratio_threshold!r} * `baseline_volume`"
    return f"""
SELECT
  {either_envelope("`_kind` = 1", vwap, anomaly)}
FROM (
  SELECT *,
    CASE WHEN `n` = {n + 1} THEN (`volume_sum` - `volume`) / (`n` - 1) END AS `baseline_volume`
  FROM (
    SELECT `symbol`, window_start, window_end, `vwap`, `volatility`, `volume`, `trade_count`,
      SUM(`volume`) OVER w AS `volume_sum`,
      COUNT(*) OVER w AS `n`
    FROM {ident(windows)}
    WINDOW w AS (
      PARTITION BY `symbol` ORDER BY window_time
      ROWS BETWEEN {n} PRECEDING AND CURRENT ROW
    )
  )
)
CROSS JOIN UNNEST(ARRAY[1, CASE WHEN {anomalous} THEN 2 ELSE 0 END]) AS `kinds` (`_kind`)
WHERE `_kind` > 0
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the trades source, the signal and dead-letter sinks around the SQL above."""
    job = JOB.configure(config)
    p = TradingParameters.from_job(job)
    JOB.create_tables(t_env, job)
    t_env.execute_sql(windows_view("trade_windows", JOB.input, p))
    return JOB.statements(
        t_env,
        job,
        [window_signals("trade_windows", p), price_spike_signals(JOB.input, p)],
    )
