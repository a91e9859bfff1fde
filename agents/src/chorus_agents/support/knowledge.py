"""A simulated knowledge base: help articles found by keywords, in a deterministic order.

One of the customer service domain's back ends (see :mod:`.crm`). A search splits the
query into lower-case words (less :data:`STOPWORDS`) and scores every article: three
points for each query word in its title, two in its tags, one in its body. The best
score comes first, ties by article id, so the same query always answers the same list. An
empty query is a :class:`KnowledgeRefused` (rule ``query``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "can", "do", "does", "for", "how", "i", "in", "is", "it"),
        *("me", "my", "of", "on", "or", "the", "to", "was", "what", "where", "why", "with"),
        *("you", "your"),
    }
)
"""Words a search ignores: they match everything and rank nothing."""


class KnowledgeRefused(ValueError):
    """The knowledge base refused a request; ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Article:
    article_id: str
    title: str
    body: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    article_id: str
    title: str
    score: int


ARTICLES: tuple[Article, ...] = (
    Article(
        "kb-101",
        "Refund policy",
        "Orders can be refunded within 30 days of purchase, up to the amount paid. "
        "One refund per order; refunds reach the card in 5 to 10 days.",
        ("refund", "billing", "returns"),
    ),
    Article(
        "kb-102",
        "Where is my order?",
        "Track an order from its status: placed, shipped (with a tracking number), "
        "delivered. Delays over 5 days after shipping are investigated by the carrier.",
        ("order", "delivery", "tracking", "late"),
    ),
    Article(
        "kb-103",
        "Damaged or wrong item",
        "Send a photo of the damaged item; we ship a replacement or refund the order.",
        ("damaged", "returns", "replacement", "refund"),
    ),
    Article(
        "kb-104",
        "Resetting your password",
        "Use 'forgot password' on the sign-in page; the link expires after one hour.",
        ("account", "password", "login"),
    ),
    Article(
        "kb-105",
        "Cancelling a subscription",
        "Cancel any time from account settings; the plan runs to the end of the period.",
        ("subscription", "cancel", "billing", "account"),
    ),
    Article(
        "kb-106",
        "Double charge on my card",
        "A pending authorisation can look like a double charge and drops off in 3 days. "
        "If both charges settle, billing refunds the duplicate.",
        ("billing", "charge", "refund", "card"),
    ),
)
"""The reference articles the MCP server serves."""


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class KnowledgeBase:
    """Articles, searchable by keywords."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self._articles = {a.article_id: a for a in articles}

    def article(self, article_id: str) -> Article:
        article = self._articles.get(article_id)
        if article is None:
            raise KnowledgeRefused("unknown_article", f"article {article_id!r} does not exist")
        return article

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """Articles matching any word of ``query``, best first, ties by id; at most ``limit``."""
        words = set(_words(query))
        if not words:
            raise KnowledgeRefused("query", "a search needs at least one word")
        hits = []
        for article in self._articles.values():
            title, tags, body = set(_words(article.title)), set(article.tags), _words(article.body)
            score = sum(3 * (w in title) + 2 * (w in tags) + (w in body) for w in words)
            if score > 0:
                hits.append(Hit(article.article_id, article.title, score))
        hits.sort(key=lambda h: (-h.score, h.article_id))
        return hits[: max(0, limit)]
