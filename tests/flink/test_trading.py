"""The trading job in the mini-cluster: a scripted stream of trades, malformed records and late
trades in, and exactly the VWAP, price-spike and volume-anomaly signals and dead letters out,
checked against an independent computation in Python."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.flink.scenario import JobScenario, expected, iso, watermarks_before
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.integration

BASE = datetime(2026, 1, 1, 9, 0, 0)
DELAY = timedelta(seconds=5)
WINDOW, SLIDE = timedelta(seconds=20), timedelta(seconds=10)
SPIKE, BASELINE_WINDOWS, VOLUME_RATIO = 0.05, 2, 2.5
MARGIN = 1e-6  # decisions this close to a threshold would make the script ambiguous

Trade = tuple[str, float, float, datetime]

TRADING = JobScenario("trading", "trading", "trades_topic")
PARAMETERS = {
    "watermark_delay_seconds": str(int(DELAY.total_seconds())),
    "window_seconds": str(int(WINDOW.total_seconds())),
    "slide_seconds": str(int(SLIDE.total_seconds())),
    "spike_threshold": str(SPIKE),
    "baseline_windows": str(BASELINE_WINDOWS),
    "volume_ratio_threshold": str(VOLUME_RATIO),
}
"""The job's parameters the script and the expectations below are written for."""


def script(seed: int = 11) -> tuple[list[str | None], dict[int, str]]:
    """The raw values in order, and the dead-letter reason expected for some of them.

    Two symbols trade about once a second each, up to 1.5 s out of order; ACME has one
    spike (+25 %) and a volume burst between 50 s and 60 s.
    """
    rng = random.Random(seed)
    values: list[str | None] = []
    reasons: dict[int, str] = {}
    prices = {"ACME": 100.0, "BOLT": 50.0}
    for i in range(180):
        symbol = "ACME" if i % 2 == 0 else "BOLT"
        at = BASE + timedelta(milliseconds=500 * i + rng.randint(-1500, 1500))
        price = round(prices[symbol] * (1 + rng.uniform(-0.01, 0.01)), 2)
        quantity = rng.randint(10, 20)
        if symbol == "ACME" and i == 120:
            price = round(price * 1.25, 2)
        if symbol == "ACME" and 100 <= i < 120:
            quantity = 400
        values.append(
            json.dumps(
                {"symbol": symbol, "price": price, "quantity": quantity, "event_time": iso(at)}
            )
        )
        if i in (40, 90, 150):  # a trade 30 s behind the stream: late
            late = at - timedelta(seconds=30)
            reasons[len(values)] = "late"
            values.append(
                json.dumps(
                    {"symbol": symbol, "price": price, "quantity": 5, "event_time": iso(late)}
                )
            )
    now = iso(BASE + timedelta(seconds=20))  # behind the stream: moves no watermark
    malformed: list[tuple[str | None, str]] = [
        ("not json", "invalid_json"),
        (None, "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (json.dumps({"price": 100, "quantity": 1, "event_time": now}), "missing_field:symbol"),
        (
            json.dumps({"symbol": "", "price": 1, "quantity": 1, "event_time": now}),
            "invalid_field:symbol",
        ),
        (
            json.dumps({"symbol": "ACME", "price": "abc", "quantity": 1, "event_time": now}),
            "invalid_field:price",
        ),
        (
            json.dumps({"symbol": "ACME", "price": -3, "quantity": 1, "event_time": now}),
            "invalid_field:price",
        ),
        (
            json.dumps({"symbol": "ACME", "price": 100, "quantity": 0, "event_time": now}),
            "invalid_field:quantity",
        ),
        (json.dumps({"symbol": "ACME", "price": 100, "quantity": 1}), "missing_field:event_time"),
        (
            json.dumps({"symbol": "ACME", "price": 100, "quantity": 1, "event_time": "noon"}),
            "invalid_field:event_time",
        ),
    ]
    for n, (value, reason) in enumerate(malformed):
        position = 60 + 7 * n  # spread through the stream, after the first watermarks
        values.insert(position, value)
        reasons = {(k + 1 if k >= position else k): r for k, r in reasons.items()}
        reasons[position] = reason
    return values, reasons


def accepted(values: list[str | None], reasons: dict[int, str]) -> list[Trade]:
    """The trades the job keeps, checking the late ones really meet an earlier watermark."""
    trades = []
    for i, (value, watermark) in enumerate(
        zip(values, watermarks_before(values, DELAY), strict=True)
    ):
        if i in reasons:
            if reasons[i] == "late":
                record = json.loads(value or "")
                assert watermark is not None
                assert datetime.fromisoformat(record["event_time"][:-1]) <= watermark
            continue
        record = json.loads(value or "")
        at = datetime.fromisoformat(record["event_time"][:-1])
        assert watermark is None or at > watermark, f"record {i} is late by accident"
        trades.append((record["symbol"], float(record["price"]), float(record["quantity"]), at))
    return trades


def windows_of(at: datetime) -> list[datetime]:
    first = BASE + ((at - BASE) // SLIDE) * SLIDE
    return [first - SLIDE, first]  # WINDOW is two slides


def expected_signals(trades: list[Trade]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    windows: dict[tuple[str, datetime], list[Trade]] = defaultdict(list)
    for trade in trades:
        for start in windows_of(trade[3]):
            windows[(trade[0], start)].append(trade)
    per_symbol: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for (symbol, start), members in sorted(windows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        end = start + WINDOW
        volume = sum(q for _, _, q, _ in members)
        prices = [p for _, p, _, _ in members]
        mean = sum(prices) / len(prices)
        bounds = {"window_start": start.isoformat(), "window_end": end.isoformat()}
        vwap = {
            **bounds,
            "vwap": sum(p * q for _, p, q, _ in members) / volume,
            "volatility": math.sqrt(sum((p - mean) ** 2 for p in prices) / len(prices)),
            "volume": volume,
            "trade_count": len(members),
        }
        found.update([expected("vwap", symbol, end, vwap)])
        history = per_symbol[symbol]
        if len(history) >= BASELINE_WINDOWS:
            baseline = sum(v for _, v in history[-BASELINE_WINDOWS:]) / BASELINE_WINDOWS
            assert abs(volume - VOLUME_RATIO * baseline) > MARGIN * volume
            if volume > VOLUME_RATIO * baseline:
                anomaly = {
                    **bounds,
                    "volume": volume,
                    "baseline_volume": baseline,
                    "ratio": volume / baseline,
                }
                found.update([expected("volume_anomaly", symbol, end, anomaly)])
        history.append((start, volume))
    return found


def expected_spikes(trades: list[Trade], offsets: dict[int, int]) -> dict[str, dict[str, Any]]:
    """Trades far from the VWAP of the same symbol's trades in the 20 s before them."""
    found: dict[str, dict[str, Any]] = {}
    for index, (symbol, price, quantity, at) in enumerate(trades):
        prior = [
            t
            for j, t in enumerate(trades)
            if j != index and t[0] == symbol and at - WINDOW <= t[3] <= at
        ]
        if not prior:
            continue
        vwap = sum(p * q for _, p, q, _ in prior) / sum(q for _, _, q, _ in prior)
        deviation = (price - vwap) / vwap
        assert abs(abs(deviation) - SPIKE) > MARGIN
        if abs(deviation) > SPIKE:
            spike = {"price": price, "quantity": quantity, "vwap": vwap, "deviation": deviation}
            found.update(
                [expected("price_spike", symbol, at, spike, id_suffix=f"0-{offsets[index]}")]
            )
    return found


def expected_outcome(
    values: list[str | None], reasons: dict[int, str]
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str | None]]]:
    """What one uninterrupted run over the script commits: the signals by id, and the dead
    letters as (reason, payload) in input order."""
    trades = accepted(values, reasons)
    offsets = dict(enumerate(i for i in range(len(values)) if i not in reasons))
    signals = expected_signals(trades) | expected_spikes(trades, offsets)
    return signals, [(reason, values[i]) for i, reason in sorted(reasons.items())]


def test_trading_job_emits_exactly_the_expected_signals_and_dead_letters(
    kafka: KafkaBroker, flink: FlinkEnv
) -> None:
    values, reasons = script()
    wanted, letters = expected_outcome(values, reasons)
    kinds = {s["kind"] for s in wanted.values()}
    assert kinds == {"vwap", "price_spike", "volume_anomaly"}, "the script must exercise every kind"

    outcome = TRADING.run(
        kafka,
        flink,
        values,
        PARAMETERS,
        options={"execution.checkpointing.interval": "1 s"},
        timeout=300,
    )

    outcome.assert_signals(wanted)
    outcome.assert_dead_letters(letters, in_order=True)
