"""The lexicon sentiment used when a chat message carries none."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flink" / "src"))
sentiment: Any = importlib.import_module("chorus_flink.scoring.sentiment")


def squash(total: float) -> float:
    return round(total / math.sqrt(total * total + 15), 4)


def test_neutral_and_empty_text_score_zero() -> None:
    assert sentiment.sentiment("") == 0.0
    assert sentiment.sentiment(None) == 0.0
    assert sentiment.sentiment("my order number is 12345") == 0.0


def test_weights_add_up_and_are_squashed() -> None:
    assert sentiment.sentiment("Great, thanks!") == squash(3.0 + 2.0)
    assert sentiment.sentiment("This is terrible and useless") == squash(-6.0)


def test_negation_flips_and_damps() -> None:
    assert sentiment.sentiment("this is not good") == squash(-1.0)
    assert sentiment.sentiment("it doesn't seem broken") == squash(1.0)
    # punctuation ends the negation's clause
    assert sentiment.sentiment("it doesn't work, broken") == squash(-2.0)
    assert sentiment.sentiment("not at all bad") == squash(1.0)
    # four words away: outside the negation scope
    assert sentiment.sentiment("not that it is very bad") == squash(-3.0)


def test_intensifier() -> None:
    assert sentiment.sentiment("very good") == squash(3.0)


def test_typographic_apostrophe() -> None:
    assert sentiment.sentiment("I don\u2019t love it") == sentiment.sentiment("I don't love it")
    assert sentiment.sentiment("I don't love it") == squash(-1.5)


def test_range_and_determinism() -> None:
    text = "terrible awful horrible worst hate furious useless unacceptable " * 20
    value = sentiment.sentiment(text)
    assert -1.0 <= value < -0.99
    assert sentiment.sentiment(text) == value
    assert 0.99 < sentiment.sentiment("great excellent perfect " * 30) <= 1.0


def test_tokens() -> None:
    assert sentiment.tokens("It's BROKEN -- again!!") == ["it's", "broken", "again"]
