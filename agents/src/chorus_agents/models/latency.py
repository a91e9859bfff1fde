"""A scripted model's latency: fixed, or lognormal like a real model's, seeded.

In a script (see :mod:`chorus_agents.models.scripted`)::

    latency: {fixed: 1.5}                          # every turn takes 1.5 s
    latency: {median: 2.0, sigma: 0.8, seed: 7}    # lognormal, median 2 s

A lognormal turn's delay is drawn from the conversation itself (a hash of the seed and the
request), not from a shared random stream: the same conversation waits the same time,
whatever else runs concurrently, so a run is repeatable and its distribution is the one
stated. The wait is an ``asyncio.sleep``: cancelling the call cancels it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from chorus_agents.models.base import ModelRequest

_UNIT = NormalDist()


class LatencyError(ValueError):
    """A latency that cannot be read; the message names the field."""


@dataclass(frozen=True)
class Latency:
    """A turn's delay in seconds: ``fixed``, or lognormal with ``median`` and ``sigma``."""

    fixed: float | None = None
    median: float = 0.0
    sigma: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, value: Any, where: str = "latency") -> Latency:
        if not isinstance(value, Mapping):
            raise LatencyError(f"{where}: a mapping ({{fixed: S}} or {{median: S, sigma: X}})")
        unknown = set(value) - {"fixed", "median", "sigma", "seed"}
        if unknown:
            raise LatencyError(
                f"{where}: unknown keys {sorted(unknown)} (fixed, median, sigma, seed)"
            )
        if ("fixed" in value) == ("median" in value):
            raise LatencyError(f"{where}: give fixed, or median (and sigma), not both or neither")
        numbers = {}
        for key in ("fixed", "median", "sigma"):
            if key in value:
                number = value[key]
                if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                    raise LatencyError(f"{where}.{key}: a number of seconds >= 0, not {number!r}")
                numbers[key] = float(number)
        seed = value.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise LatencyError(f"{where}.seed: an integer, not {seed!r}")
        return cls(
            fixed=numbers.get("fixed"),
            median=numbers.get("median", 0.0),
            sigma=numbers.get("sigma", 0.0),
            seed=seed,
        )

    def seconds(self, request: ModelRequest) -> float:
        """The delay of the turn that answers ``request``."""
        if self.fixed is not None:
            return self.fixed
        if self.median == 0 or self.sigma == 0:
            return self.median
        digest = hashlib.sha256(f"{self.seed}\0{request!r}".encode()).digest()
        # A uniform in (0, 1), never 0 or 1 (the inverse CDF's ends are infinite).
        uniform = (int.from_bytes(digest[:8], "big") + 0.5) / 2**64
        return self.median * math.exp(self.sigma * _UNIT.inv_cdf(uniform))
