"""The customer-service, traffic and ICU jobs' config checks, SQL helpers and UDF wrappers.

The job modules import pyflink only to type ``build`` and to register UDFs inside it, so the
root environment imports them; what runs in Flink is tested in the mini-cluster
(test_customer_service.py, test_traffic.py, test_icu.py).
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
icu: Any = importlib.import_module("chorus_flink.jobs.icu")
traffic: Any = importlib.import_module("chorus_flink.jobs.traffic")
support: Any = importlib.import_module("chorus_flink.jobs.customer_service")


def job(module: Any, **values: str) -> Any:
    return config.JobConfig.parse(
        module.MODULE, {"bootstrap_servers": "k:9092", **values}, module.PARAMETERS
    )


def test_traffic_topology_errors_name_the_job() -> None:
    with pytest.raises(config.ConfigError, match=r"chorus_flink.jobs.traffic: config neighbours"):
        traffic.TrafficParameters.from_job(job(traffic, neighbours='{"s1": "s2"}'))
    found = traffic.TrafficParameters.from_job(job(traffic, neighbours='{"b": ["a", "c"]}'))
    assert found.pairs == (("a", "b"), ("b", "c"))


def test_adjacency_predicate() -> None:
    assert traffic.adjacency([], "l", "r") == "FALSE"
    assert traffic.adjacency([("a", "b"), ("b", "c")], "l", "r") == (
        "((l = 'a' AND r = 'b') OR (l = 'b' AND r = 'c'))"
    )


def test_icu_horizon_must_be_a_multiple_of_the_window() -> None:
    with pytest.raises(config.ConfigError, match="multiple of 'window_seconds'"):
        icu.IcuParameters.from_job(job(icu, window_seconds="60", missing_after_seconds="90"))
    assert icu.IcuParameters.from_job(job(icu)).missing_after_seconds == 300


def test_icu_udfs_wrap_news2() -> None:
    normal = ("16", "97", "false", "120", "70", "A", "37.0")
    assert icu.news2_score(*normal) == 0
    assert icu.news2_band_rank(*normal) == 0
    red = ("16", "97", "false", "120", "70", "1.0", "37.0")  # not alert: a single 3
    assert icu.news2_score(*red) == 3
    assert icu.news2_band_rank(*red) == 1
    assert icu.news2_score(*normal[:6], None) is None


def test_icu_value_check_covers_every_parameter() -> None:
    check = icu.value_check("p")
    for name in icu.VITALS:
        assert f"WHEN '{name}' THEN" in check
    assert check.endswith("ELSE TRUE END")


def test_support_timeouts_must_be_below_100_days() -> None:
    with pytest.raises(config.ConfigError, match="repeat_contact_seconds"):
        support.SupportParameters.from_job(job(support, repeat_contact_seconds=str(10**7)))


def test_lexicon_udf() -> None:
    assert support.lexicon_sentiment(None) == 0.0
    assert support.lexicon_sentiment("great") > 0 > support.lexicon_sentiment("awful")
