"""Example questions on the chat page come from the indexed articles: several, in the page's language,
and each one answered from the articles (issue 16 requirement 5)."""

from __future__ import annotations

from typing import Any

from rag.config import Settings
from rag.text import has_hangul


def test_several_examples_from_one_article_each_answered(settings: Settings, seed_retriever: Any) -> None:
    from rag.answer.compose import answer
    from rag.serve.service import Service

    service = Service(settings, seed_retriever)  # the shipped corpus: one article
    for lang in ("ko", "en"):
        examples = service.examples(lang)
        assert len(examples) >= 3 and len(set(examples)) == len(examples), examples
        for q in examples:
            if lang == "ko":
                assert has_hangul(q), q
            else:  # the page's own words are English; an article title or a Latin name may be quoted
                assert q.startswith("What "), q
            assert not answer(seed_retriever, q).abstained, q
