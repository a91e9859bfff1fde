"""A small deterministic lexicon sentiment score for chat messages, in -1..1.

Used when a message arrives without a ``sentiment`` (no upstream model scored it). Each word
of :data:`LEXICON` carries a weight in -3..3; a negator (``not``, ``never``, ``n't``...) up to
three words before a sentiment word, in the same clause (punctuation ends one), flips it and
damps it by half; an intensifier (``very``,
``so``...) just before one multiplies it by 1.5. The sum ``s`` is squashed into -1..1 as
``s / sqrt(s*s + 15)`` (VADER's normalisation) and rounded to four decimals, so equal text
always scores equally, on every machine.
"""

from __future__ import annotations

import math
import re
from typing import Final

LEXICON: Final[dict[str, float]] = {
    # positive
    "thanks": 2.0,
    "thank": 2.0,
    "great": 3.0,
    "excellent": 3.0,
    "perfect": 3.0,
    "awesome": 3.0,
    "good": 2.0,
    "love": 3.0,
    "happy": 2.5,
    "helpful": 2.0,
    "resolved": 2.0,
    "works": 1.5,
    "working": 1.0,
    "fixed": 2.0,
    "appreciate": 2.5,
    "fine": 1.0,
    "nice": 2.0,
    "glad": 2.0,
    "quick": 1.0,
    "please": 0.5,
    # negative
    "bad": -2.0,
    "terrible": -3.0,
    "awful": -3.0,
    "horrible": -3.0,
    "worst": -3.0,
    "hate": -3.0,
    "angry": -2.5,
    "furious": -3.0,
    "annoyed": -2.0,
    "frustrated": -2.5,
    "frustrating": -2.5,
    "disappointed": -2.5,
    "useless": -3.0,
    "broken": -2.0,
    "wrong": -1.5,
    "problem": -1.0,
    "issue": -1.0,
    "still": -0.5,
    "waiting": -1.0,
    "slow": -1.5,
    "unacceptable": -3.0,
    "ridiculous": -2.5,
    "cancel": -2.0,
    "refund": -1.5,
    "complaint": -2.0,
}
"""Word weights in -3..3 (lower-case)."""

NEGATORS: Final = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nothing",
        "cannot",
        "without",
        "isn't",
        "doesn't",
        "don't",
        "didn't",
        "won't",
        "wasn't",
        "can't",
        "aren't",
        "haven't",
    }
)
INTENSIFIERS: Final = frozenset({"very", "so", "really", "extremely", "totally", "absolutely"})
NEGATION_SCOPE: Final = 3
NORMALISATION: Final = 15.0

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CLAUSE = re.compile(r"[.,;:!?]+")


def tokens(text: str) -> list[str]:
    """Lower-case words, apostrophes kept inside (``don't``, also typographic ones)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def raw_score(words: list[str]) -> float:
    """The unnormalised sum of the weights, after negation and intensifiers."""
    total = 0.0
    for i, word in enumerate(words):
        weight = LEXICON.get(word)
        if weight is None:
            continue
        if i > 0 and words[i - 1] in INTENSIFIERS:
            weight *= 1.5
        window = words[max(0, i - NEGATION_SCOPE) : i]
        if any(w in NEGATORS or w.endswith("n't") for w in window):
            weight *= -0.5
        total += weight
    return total


def sentiment(text: str | None) -> float:
    """The sentiment of ``text`` in -1..1 (0 for empty or neutral text)."""
    if not text:
        return 0.0
    total = sum(raw_score(tokens(clause)) for clause in _CLAUSE.split(text))
    return round(total / math.sqrt(total * total + NORMALISATION), 4)
