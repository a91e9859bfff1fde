"""The shared SQL helpers of ``chorus_flink.tables`` that need no cluster.

Whether Flink accepts what they write is tested by planning every job
(test_planning.py) and by the job tests in the mini-cluster.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
tables: Any = importlib.import_module("chorus_flink.tables")


@pytest.mark.parametrize(
    ("seconds", "sql"),
    [
        (0, "INTERVAL '0 00:00:00' DAY TO SECOND"),
        (99, "INTERVAL '0 00:01:39' DAY TO SECOND"),
        (100, "INTERVAL '0 00:01:40' DAY TO SECOND"),  # '100' SECOND would not parse
        (3600, "INTERVAL '0 01:00:00' DAY TO SECOND"),
        (90061, "INTERVAL '1 01:01:01' DAY TO SECOND"),
        (100 * 86400 - 1, "INTERVAL '99 23:59:59' DAY TO SECOND"),
    ],
)
def test_interval_is_written_day_to_second(seconds: int, sql: str) -> None:
    assert tables.interval(seconds) == sql


@pytest.mark.parametrize("seconds", [-1, 100 * 86400])
def test_interval_refuses_what_day_to_second_cannot_hold(seconds: int) -> None:
    with pytest.raises(ValueError, match="below 100 days"):
        tables.interval(seconds)


def test_watermark_uses_the_interval() -> None:
    assert tables.watermark(120) == (
        "WATERMARK FOR `event_time` AS `event_time` - INTERVAL '0 00:02:00' DAY TO SECOND"
    )
