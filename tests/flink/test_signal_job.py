"""``chorus_flink.signal_job``: the names a job's spec implies, and typed parameters.

The wiring itself (tables, UDFs, statements) runs in the job tests and test_planning.py.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
config: Any = importlib.import_module("chorus_flink.config")
trading: Any = importlib.import_module("chorus_flink.jobs.trading")
maintenance: Any = importlib.import_module("chorus_flink.jobs.maintenance")
tables: Any = importlib.import_module("chorus_flink.tables")


def job(module: Any, **values: str) -> Any:
    return module.JOB.configure({"bootstrap_servers": "k:9092", **values})


def test_the_spec_names_topics_and_tables_after_domain_and_input() -> None:
    spec = trading.JOB
    assert dict(trading.PARAMETERS) == {
        "trades_topic": "trading.trades",
        "signals_topic": "trading.signals",
        "dead_letter_topic": "trading.trades.dlq",
        "watermark_delay_seconds": "5",
        "window_seconds": "60",
        "slide_seconds": "10",
        "spike_threshold": "0.02",
        "baseline_windows": "5",
        "volume_ratio_threshold": "3.0",
    }
    assert (spec.input_topic, spec.checked, spec.input) == (
        "trades_topic",
        "trades_checked",
        "trades",
    )
    windows = trading.window_signals("w", trading.TradingParameters.from_job(job(trading)))
    assert "THEN 'dev.chorus.trading.vwap' ELSE 'dev.chorus.trading.volume_anomaly' END" in (
        windows
    )


def test_either_envelope_chooses_per_column_and_keeps_what_is_common() -> None:
    def columns(kind: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = trading.JOB.signal_columns(
            kind, subject="`symbol`", time="window_end", data={"volume": "`volume`"}
        )
        return found

    sql = tables.either_envelope("`_kind` = 1", columns("vwap"), columns("volume_anomaly"))
    assert "CASE WHEN `_kind` = 1 THEN 'vwap' ELSE 'volume_anomaly' END AS `kind`" in sql
    assert "CAST(`symbol` AS STRING) AS `subject`" in sql  # the same for both: no CASE
    assert sql.count(" AS `") == len(tables.ENVELOPE_COLUMNS) + 1  # and `data`
    with pytest.raises(ValueError, match="columns differ"):
        tables.either_envelope("x", columns("vwap"), columns("vwap")[:-1])


def test_parameters_are_read_by_type_with_their_minimum() -> None:
    found = maintenance.MaintenanceParameters.from_job(job(maintenance, z_threshold="2.5"))
    assert found == maintenance.MaintenanceParameters(
        history_readings=20,
        min_history=5,
        z_threshold=2.5,
        min_stddev=0.001,
        consecutive_anomalies=3,
    )
    assert isinstance(found.history_readings, int) and isinstance(found.z_threshold, float)
    with pytest.raises(config.ConfigError, match=r"'history_readings' = 1 is below 2"):
        maintenance.MaintenanceParameters.from_job(job(maintenance, history_readings="1"))
    with pytest.raises(config.ConfigError, match=r"'min_stddev' = 'x' is not a number"):
        maintenance.MaintenanceParameters.from_job(job(maintenance, min_stddev="x"))


def test_parameters_check_rules_across_fields() -> None:
    with pytest.raises(config.ConfigError, match="multiple of 'slide_seconds'"):
        trading.TradingParameters.from_job(job(trading, window_seconds="25"))
    assert (
        trading.TradingParameters.from_job(job(trading, window_seconds="120")).window_seconds == 120
    )
