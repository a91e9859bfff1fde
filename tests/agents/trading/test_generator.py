"""The market data generator: reproducible, in order, and the flash crash is where it is."""

from __future__ import annotations

import statistics

import pytest
from chorus_agents.trading.generator import FlashCrash, Trade, trades

PRICES = {"ACME": 100.0, "GLOBX": 50.0}


@pytest.mark.unit
def test_same_seed_same_stream_in_event_time_order() -> None:
    first = [t.record() for t in trades(PRICES, seconds=10)]
    second = [t.record() for t in trades(PRICES, seconds=10)]
    assert first == second
    assert len(first) == 200
    times = [t["event_time"] for t in first]
    assert times == sorted(times)
    assert {t["symbol"] for t in first} == set(PRICES)


@pytest.mark.unit
def test_quiet_run_stays_near_the_start_price() -> None:
    acme = [t.price for t in trades(PRICES, seconds=60) if t.symbol == "ACME"]
    assert max(abs(p / 100.0 - 1.0) for p in acme) < 0.03


@pytest.mark.unit
def test_flash_crash_drops_the_price_and_lifts_volume_then_recovers() -> None:
    crash = FlashCrash("ACME", at_seconds=30.0, depth=0.12, fall_seconds=4.0)
    stream = list(trades(PRICES, seconds=80, incidents=(crash,)))
    start = stream[0].event_time

    def window(symbol: str, lo: float, hi: float) -> list[Trade]:
        return [
            t
            for t in stream
            if t.symbol == symbol and lo <= (t.event_time - start).total_seconds() < hi
        ]

    before, bottom, after = window("ACME", 20, 30), window("ACME", 33, 35), window("ACME", 60, 80)
    assert min(t.price for t in bottom) < 0.9 * statistics.mean(t.price for t in before)
    assert statistics.mean(t.quantity for t in bottom) > 3 * statistics.mean(
        t.quantity for t in before
    )
    assert statistics.mean(t.price for t in after) > 0.97 * statistics.mean(t.price for t in before)
    # The other symbol is untouched.
    calm = window("GLOBX", 30, 35)
    assert min(t.price for t in calm) > 0.97 * 50.0
    assert crash.incident_id == "flash-crash:ACME@30"
