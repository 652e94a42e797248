"""Retrieval metrics (Recall@1/5/10, MRR@10, per language) over JSONL query sets.

A query is a hit at rank r when the r-th retrieved chunk's ``doc_id`` is in its
``gold_ids`` or, for queries that give ``evidence`` strings, when the chunk text
contains one of them. Queries marked ``"answerable": false`` have no evidence
and are left out of retrieval metrics. Time words in questions ("지난주", "latest")
are resolved as ``rag ask`` resolves them (``rag.search.timescope``). Answer
metrics live in ``answer_eval``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.records import Hit
from rag.search.retrieve import Retriever
from rag.text import detect_lang

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Query:
    id: str
    question: str
    lang: str
    gold_ids: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    answerable: bool = True
    raw: dict[str, Any] | None = None


def load_queries(path: str | Path) -> list[Query]:
    """Read ``{"id","question", ...}`` lines; a bad line is an error naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise RagError(f"query file {p} does not exist")
    out: list[Query] = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                question = r["question"]
                if not isinstance(question, str) or not question.strip():
                    raise ValueError("'question' must be a non-empty string")
            except (ValueError, KeyError, TypeError) as e:
                raise RagError(f"{p}:{n}: not a query line ({e}); expected {{\"id\",\"question\", ...}}") from None
            out.append(
                Query(
                    id=str(r.get("id", n)), question=question, lang=r.get("lang") or detect_lang(question),
                    gold_ids=tuple(r.get("gold_ids") or ()), evidence=tuple(r.get("evidence") or ()),
                    answerable=bool(r.get("answerable", True)), raw=r,
                )
            )
    return out


def first_relevant_rank(q: Query, hits: Sequence[Hit]) -> int | None:
    """1-based rank of the first relevant hit, or None."""
    for h in hits:
        if h.chunk.doc_id in q.gold_ids or any(e in h.chunk.text for e in q.evidence):
            return h.rank
    return None


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    if n == 0:
        return {"n": 0}
    m: dict[str, float] = {"n": n}
    for k in KS:
        m[f"recall@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)
    m["mrr@10"] = round(sum(1.0 / r for r in ranks if r is not None and r <= 10) / n, 4)
    return m


def evaluate_retrieval(
    retriever: Retriever, queries: Sequence[Query], k: int = 10, mode: str = "hybrid", now: str = "",
    question_time: bool = True,
) -> dict[str, Any]:
    """Recall@k and MRR@10 overall and per query language. Time words in the questions are resolved
    against ``now`` as answers resolve them (:mod:`rag.search.timescope`); ``question_time=False`` ignores
    them. ``time_words`` counts the questions with time words and those whose search they changed."""
    from rag.search.timescope import search_scoped

    scored = [q for q in queries if q.answerable and (q.gold_ids or q.evidence)]
    found = search_scoped(retriever, [q.question for q in scored], k=max(k, 10), now=now,
                          question_time=question_time, mode=mode)
    hits = [h for h, _ in found]
    ranks = [first_relevant_rank(q, h) for q, h in zip(scored, hits, strict=True)]
    by_lang: dict[str, list[int | None]] = {}
    for q, r in zip(scored, ranks, strict=True):
        by_lang.setdefault(q.lang, []).append(r)
    return {
        "mode": mode,
        "all": _metrics(ranks),
        "by_lang": {lang: _metrics(rs) for lang, rs in sorted(by_lang.items())},
        "misses": [q.id for q, r in zip(scored, ranks, strict=True) if r is None or r > 5][:50],
        "time_words": {"questions": sum(ts is not None for _, ts in found),
                       "applied": sum(ts is not None and ts.applied for _, ts in found)},
    }
