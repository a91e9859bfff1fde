"""Market data for the trading domain: trades per symbol, with a flash crash injected.

Prices follow a seeded random walk (geometric, small steps), so a run is reproducible;
quantities are lognormal-ish round lots. A flash crash takes one symbol down by
``depth`` over ``fall_seconds`` with heavy volume, then recovers over ``recover_seconds``:
the Flink trading job should see a price spike and a volume anomaly, and the agents act.

Each trade is ``{"symbol", "price", "quantity", "event_time"}`` (event time as
``YYYY-MM-DD HH:MM:SS.fff`` in UTC), keyed by symbol: the input of
``chorus_flink.jobs.trading``. The generator is pure (an iterator of records); writing
them to Kafka is the caller's business.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class FlashCrash:
    """An injected incident: ``symbol`` falls by ``depth`` starting at ``at_seconds``."""

    symbol: str
    at_seconds: float
    depth: float = 0.12
    fall_seconds: float = 4.0
    recover_seconds: float = 20.0
    volume_factor: float = 8.0

    @property
    def incident_id(self) -> str:
        return f"flash-crash:{self.symbol}@{self.at_seconds:g}"

    def shock(self, t: float) -> tuple[float, float]:
        """The price factor and volume factor at ``t`` seconds into the run."""
        into = t - self.at_seconds
        if into < 0 or into > self.fall_seconds + self.recover_seconds:
            return 1.0, 1.0
        if into <= self.fall_seconds:
            return 1.0 - self.depth * into / self.fall_seconds, self.volume_factor
        back = (into - self.fall_seconds) / self.recover_seconds
        return 1.0 - self.depth * (1.0 - back), 1.0 + (self.volume_factor - 1.0) * (1.0 - back)


@dataclass(frozen=True)
class Trade:
    symbol: str
    price: float
    quantity: int
    event_time: datetime

    def record(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "price": self.price,
            "quantity": self.quantity,
            "event_time": self.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }


def trades(
    prices: Mapping[str, float],
    *,
    seconds: float,
    rate_per_second: float = 20.0,
    start: datetime | None = None,
    incidents: tuple[FlashCrash, ...] = (),
    volatility: float = 0.0004,
    seed: int = 7,
) -> Iterator[Trade]:
    """``rate_per_second`` trades per second across ``prices``' symbols, in event-time order."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    symbols = sorted(prices)
    walk = {s: float(p) for s, p in prices.items()}
    step = 1.0 / rate_per_second
    t = 0.0
    while t < seconds:
        symbol = symbols[rng.randrange(len(symbols))]
        walk[symbol] *= math.exp(rng.gauss(0.0, volatility))
        price_factor, volume_factor = 1.0, 1.0
        for crash in incidents:
            if crash.symbol == symbol:
                p, v = crash.shock(t)
                price_factor, volume_factor = price_factor * p, volume_factor * v
        quantity = max(1, round(rng.lognormvariate(3.5, 0.5) * volume_factor))
        yield Trade(
            symbol=symbol,
            price=round(walk[symbol] * price_factor, 4),
            quantity=quantity,
            event_time=start + timedelta(seconds=t),
        )
        t += step
