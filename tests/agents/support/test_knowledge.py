"""The knowledge base: keyword search with a deterministic ranking."""

from __future__ import annotations

import pytest
from chorus_agents.support.knowledge import ARTICLES, Article, KnowledgeBase, KnowledgeRefused


@pytest.mark.unit
def test_search_ranks_title_then_tags_then_body_ties_by_id() -> None:
    kb = KnowledgeBase(ARTICLES)
    hits = kb.search("Refund my double charge")
    assert [h.article_id for h in hits][:3] == ["kb-106", "kb-101", "kb-103"]
    assert hits == kb.search("charge double REFUND, my")
    assert [h.article_id for h in kb.search("refund", limit=2)] == ["kb-101", "kb-103"]


@pytest.mark.unit
def test_scores_count_three_for_title_two_for_tag_one_for_body() -> None:
    kb = KnowledgeBase(
        [
            Article("a", "Alpha", "nothing", ()),
            Article("b", "Other", "alpha", ("alpha",)),
            Article("c", "Other", "alpha", ()),
            Article("d", "Other", "beta", ()),
        ]
    )
    assert [(h.article_id, h.score) for h in kb.search("alpha")] == [("a", 3), ("b", 3), ("c", 1)]


@pytest.mark.unit
def test_an_empty_query_or_unknown_article_is_refused() -> None:
    kb = KnowledgeBase(ARTICLES)
    with pytest.raises(KnowledgeRefused) as refused:
        kb.search(" ?! ")
    assert refused.value.rule == "query"
    with pytest.raises(KnowledgeRefused) as refused:
        kb.article("kb-999")
    assert refused.value.rule == "unknown_article"
    assert kb.search("zebra") == []
