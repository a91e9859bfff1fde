"""``chorus_flink.deadletter`` and the watermark setting: the SQL they write, without a cluster.

That Flink plans the checked view once, and that the reasons are exactly the tested ones,
is shown by test_planning.py and the job tests in the mini-cluster.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
deadletter: Any = importlib.import_module("chorus_flink.deadletter")
signal_job: Any = importlib.import_module("chorus_flink.signal_job")
config: Any = importlib.import_module("chorus_flink.config")
trading: Any = importlib.import_module("chorus_flink.jobs.trading")


def test_the_checked_query_asks_for_each_field_once() -> None:
    sql = deadletter.checked_query("trades_raw", trading.FIELDS)
    for name in ("symbol", "price", "quantity"):
        assert sql.count(f"CHORUS_JSON_VALUE(`payload`, '{name}')") == 1, name
        assert sql.count(f"CHORUS_JSON_EXISTS(`payload`, '{name}')") == 1, name
    assert sql.count("CHORUS_JSON_TIMESTAMP(`payload`, 'event_time')") == 1
    assert sql.count("CHORUS_JSON_EXISTS(`payload`, 'event_time')") == 1
    assert sql.count("CHORUS_IS_JSON_OBJECT(`payload`)") == 1
    # Flink's own JSON functions parse the payload on every call: none is left
    assert not re.search(r"(?<!CHORUS_)(JSON_VALUE|JSON_EXISTS|IS JSON)", sql)
    # read twice, so the planner does not merge the parsing into the query above it
    assert sql.count("`_watermark`") == 3
    assert "WHEN `event_time` <= `_watermark` THEN 'late'" in sql


def test_the_checked_query_keeps_the_reasons_in_order() -> None:
    sql = deadletter.checked_query("trades_raw", trading.FIELDS)
    reasons = [
        "'invalid_json'",
        "'missing_field:symbol'",
        "'invalid_field:symbol'",
        "'missing_field:price'",
        "'invalid_field:price'",
        "'missing_field:quantity'",
        "'invalid_field:quantity'",
        "'missing_field:event_time'",
        "'invalid_field:event_time'",
        "'late'",
    ]
    at = [sql.index(f"THEN {r}") for r in reasons]
    assert at == sorted(at)


def test_a_field_may_not_take_a_checked_column_name() -> None:
    for name in ("payload", "event_time", "dead_letter_reason", "arrival_watermark"):
        with pytest.raises(ValueError, match=f"field {name}"):
            deadletter.Field(name, "STRING")


class _Config:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: str) -> str:
        return self.values.get(key, default)


class _Env:
    def __init__(self, values: dict[str, str]) -> None:
        self.config = _Config(values)

    def get_config(self) -> _Config:
        return self.config


def test_the_watermark_is_emitted_per_record_unless_configured() -> None:
    job = trading.JOB.configure({"bootstrap_servers": "k:9092"})
    assert signal_job.watermark_emit(_Env({}), job) == "on-event"
    periodic = _Env({signal_job.WATERMARK_EMIT: "on-periodic"})
    assert signal_job.watermark_emit(periodic, job) == "on-periodic"
    with pytest.raises(config.ConfigError, match=r"chorus\.watermark\.emit-strategy = 'never'"):
        signal_job.watermark_emit(_Env({signal_job.WATERMARK_EMIT: "never"}), job)
