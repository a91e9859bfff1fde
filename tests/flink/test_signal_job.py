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
    assert "'dev.chorus.trading.vwap' AS `type`" in trading.vwap_signals("w")


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
