"""``CHORUS_PRICE_SPIKES`` gives the trading job's former OVER-window answers, exactly.

The job's ``price_spike`` signals came from an event-time ``RANGE`` OVER window (running
sums over the symbol's trades in the window, the trade itself taken out); the Java function
that replaced it keeps the sums itself. Here both run side by side in one mini-cluster job
on a seeded stream built to tell them apart: dense and sparse symbols, trades sharing event
times, trades out of order (within the watermark delay), trades exactly on the window's
lower bound, and symbols whose window empties. A second stream changes pace: the function
keeps a symbol's window and waiting trades in arrays that grow, wrap and compact, and a pace
that rises after the window started moving, or falls after many trades waited, takes them
through every one of those paths.
"""

from __future__ import annotations

import bisect
import csv
import importlib
import itertools
import json
import random
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.services.flink import FLINK, FlinkEnv

sys.path.insert(0, str(FLINK / "src"))
trading: Any = importlib.import_module("chorus_flink.jobs.trading")
tables: Any = importlib.import_module("chorus_flink.tables")

BASE = datetime(2026, 1, 1, 9, 0, 0)
WINDOW_SECONDS, DELAY_SECONDS, SPIKE = 3, 2, 0.02
GRID = timedelta(milliseconds=50)  # event times on a grid: many peers and exact bounds
SYMBOLS = {"DENSE": 0.4, "BUSY": 0.3, "MID": 0.15, "THIN": 0.1, "RARE": 0.05}
MARGIN = 1e-9  # a deviation this close to the threshold would make the comparison ambiguous

Trade = tuple[str, float, float, datetime, int, int]
"""symbol, price, quantity, event time, source partition, source offset"""


def stream(count: int = 4000, seed: int = 7) -> list[Trade]:
    """Trades in arrival order, each at most 1.55 s behind the latest: none is late."""
    rng = random.Random(seed)
    levels = {s: 10.0 * (n + 1) for n, s in enumerate(SYMBOLS)}
    clock = BASE
    trades: list[Trade] = []
    for offset in range(count):
        clock += timedelta(milliseconds=rng.randint(0, 20))
        symbol = rng.choices(list(SYMBOLS), weights=list(SYMBOLS.values()))[0]
        if symbol == "RARE" and rng.random() < 0.8:
            continue  # RARE trades seconds apart: its window often empties
        levels[symbol] *= 1 + rng.uniform(-0.005, 0.005)
        price = round(levels[symbol] * (1 + rng.uniform(-0.04, 0.04)), 2)
        quantity = rng.choice([rng.randint(1, 500), rng.randint(1, 40) / 4])
        grid = (clock - BASE) // GRID
        at = BASE + GRID * (grid - rng.randint(0, 30))
        trades.append((symbol, price, quantity, at, offset % 3, offset))
    return trades


def bursts(seed: int = 11) -> list[Trade]:
    """One symbol, sparse then dense (a trade every 3 to 7 ms, at millisecond times) and back,
    a quarter of its trades up to 1.5 s behind the latest: none is late."""
    rng = random.Random(seed)
    level = 50.0
    clock = BASE
    trades: list[Trade] = []
    for pace, count in ((400, 25), (7, 1500), (400, 25), (3, 1500), (900, 10)):
        for _ in range(count):
            clock += timedelta(milliseconds=pace)
            level *= 1 + rng.uniform(-0.003, 0.003)
            price = round(level * (1 + rng.uniform(-0.04, 0.04)), 2)
            quantity = rng.choice([rng.randint(1, 500), rng.randint(1, 40) / 4])
            behind = rng.randint(0, 1500) if rng.random() < 0.25 else 0
            offset = len(trades)
            at = clock - timedelta(milliseconds=behind)
            trades.append(("BURST", price, quantity, at, offset % 3, offset))
    return trades


def reference(trades: str) -> str:
    """SQL: the job's former OVER window: every trade with earlier trades, their VWAP and
    the trade's deviation from it (as the job computed them, without the threshold)."""
    return f"""
SELECT *, (`price` - `vwap`) / `vwap` AS `deviation`
FROM (
  SELECT `symbol`, `event_time`, `source_partition`, `source_offset`, `price`, `quantity`,
    (`pq_sum` - `price` * `quantity`) / (`q_sum` - `quantity`) AS `vwap`
  FROM (
    SELECT *,
      SUM(`price` * `quantity`) OVER w AS `pq_sum`,
      SUM(`quantity`) OVER w AS `q_sum`,
      COUNT(*) OVER w AS `n`
    FROM `{trades}`
    WINDOW w AS (
      PARTITION BY `symbol` ORDER BY `event_time`
      RANGE BETWEEN {tables.interval(WINDOW_SECONDS)} PRECEDING AND CURRENT ROW
    )
  )
  WHERE `n` > 1
)
""".strip()


COMPARE = """
import json, sys
from pyflink.table import EnvironmentSettings, TableEnvironment
from chorus_flink import udf

path, delay, spikes, reference = json.loads(sys.argv[1])
t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("parallelism.default", "1")
udf.register(t_env)
t_env.execute_sql(f'''
CREATE TABLE trades (
  symbol STRING, price DOUBLE, quantity DOUBLE, event_time TIMESTAMP(3),
  source_partition INT, source_offset BIGINT,
  WATERMARK FOR event_time AS event_time - INTERVAL '{delay}' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')
''')
columns = "symbol, CAST(event_time AS STRING), source_offset, price, quantity, vwap, deviation"
query = (
    f"SELECT 'new', {columns} FROM ({spikes}) "
    f"UNION ALL SELECT 'old', {columns} FROM ({reference})"
)
with t_env.execute_sql(query).collect() as results:
    for row in results:
        print("ROW " + json.dumps(list(row)), flush=True)
"""


def run_both(flink: FlinkEnv, trades: list[Trade], tmp_path: Path) -> list[list[Any]]:
    data = tmp_path / "trades.csv"
    with data.open("w", newline="") as out:
        writer = csv.writer(out)
        for symbol, price, quantity, at, partition, offset in trades:
            at_text = at.isoformat(sep=" ", timespec="milliseconds")
            writer.writerow([symbol, repr(price), repr(quantity), at_text, partition, offset])
    job = trading.JOB.configure(
        {
            "bootstrap_servers": "unused:9092",
            "window_seconds": str(WINDOW_SECONDS),
            "slide_seconds": "1",
            "spike_threshold": str(SPIKE),
        }
    )
    spikes = trading.price_spikes("trades", trading.TradingParameters.from_job(job))
    script = tmp_path / "compare_spikes.py"
    script.write_text(COMPARE)
    result = flink.run_job(
        str(script), [json.dumps([str(data), DELAY_SECONDS, spikes, reference("trades")])]
    )
    return [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]


def assert_none_late(trades: list[Trade]) -> None:
    """Every trade is later than the watermark (the latest time so far minus the delay)."""
    latest = BASE
    for _, _, _, at, _, _ in trades:
        assert at > latest - timedelta(seconds=DELAY_SECONDS), "a trade would be late"
        latest = max(latest, at)


@pytest.mark.unit
def test_the_stream_has_what_the_comparison_needs() -> None:
    trades = stream()
    assert_none_late(trades)
    times: dict[str, list[datetime]] = defaultdict(list)
    for symbol, _, _, at, _, _ in trades:
        times[symbol].append(at)
    peers = sum(len(ts) - len(set(ts)) for ts in times.values())
    window = timedelta(seconds=WINDOW_SECONDS)
    bounds = sum(len(set(ts) & {t - window for t in ts}) for ts in times.values())
    out_of_order = sum(b[3] < a[3] for a, b in itertools.pairwise(trades))
    assert peers > 500 and bounds > 500 and out_of_order > 1000


def assert_same_spikes(rows: list[list[Any]], at_least: int) -> None:
    """The function's rows are the OVER's rows past the threshold, with the same values."""
    new = {int(r[3]): r for r in rows if r[0] == "new"}
    assert len(new) == sum(r[0] == "new" for r in rows), "a trade came out twice"
    wanted = {}
    for _, symbol, at, offset, price, quantity, vwap, deviation in (
        r for r in rows if r[0] == "old"
    ):
        assert abs(abs(deviation) - SPIKE) > MARGIN, f"trade {offset} is too close to call"
        if abs(deviation) > SPIKE:
            wanted[int(offset)] = (symbol, at, price, quantity, vwap, deviation)
    assert len(wanted) > at_least, "the stream must have many spikes"
    assert set(new) == set(wanted), (
        f"missing {sorted(set(wanted) - set(new))[:10]}, "
        f"unexpected {sorted(set(new) - set(wanted))[:10]}"
    )
    for offset, (symbol, at, price, quantity, vwap, deviation) in wanted.items():
        _, got_symbol, got_at, _, got_price, got_quantity, got_vwap, got_deviation = new[offset]
        assert (got_symbol, got_at, got_price, got_quantity) == (symbol, at, price, quantity)
        assert abs(got_vwap - vwap) <= 1e-9 * abs(vwap), f"trade {offset}: vwap {got_vwap}"
        assert abs(got_deviation - deviation) <= 1e-9 * abs(deviation), f"trade {offset}"


@pytest.mark.integration
def test_price_spikes_agree_with_the_over_window(flink: FlinkEnv, tmp_path: Path) -> None:
    assert_same_spikes(run_both(flink, stream(), tmp_path), at_least=500)


@pytest.mark.unit
def test_the_bursts_have_what_the_comparison_needs() -> None:
    trades = bursts()
    assert_none_late(trades)
    times = sorted({at for _, _, _, at, _, _ in trades})
    window = timedelta(seconds=WINDOW_SECONDS)
    most = max(bisect.bisect_right(times, at + window) - i for i, at in enumerate(times))
    assert most > 512, "the dense window must outgrow what the sparse one had room for"
    assert sum(b[3] < a[3] for a, b in itertools.pairwise(trades)) > 500


@pytest.mark.integration
def test_price_spikes_agree_with_the_over_window_when_the_pace_changes(
    flink: FlinkEnv, tmp_path: Path
) -> None:
    assert_same_spikes(run_both(flink, bursts(), tmp_path), at_least=500)
