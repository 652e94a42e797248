"""The publication dates a question searches: its time words, or an explicit filter, against the index.

:func:`scope` turns a question and the caller's filters into the filters to
search with and a :class:`TimeScope` to report. An explicit filter (CLI
``--from/--to``, API ``from/to``, the page) wins; else the time words of the
question (:mod:`rag.search.timeexpr`) against the reference day (``RAG_NOW`` /
``--now``, default today). ``rag ask``, the API, ``rag search`` and ``rag eval``
all resolve time words here, so they search the same dates.

Rules that keep questions over undated text answerable:

- A question without time words keeps the caller's filters object unchanged:
  retrieval is the same call as before.
- A question range that no dated article of the index falls in is not applied
  (reported with ``applied=False``): "1989년 6월 30일 평양축전" names when
  something happened, and an index without such dates must still answer it.
- A range that names calendar dates ("2025년 8월", "8월 초", "in August 2025",
  "1998년 8월 5일") filters the *dated* articles only; undated ones stay
  searchable (``undated=True``), because their text may say that the thing
  happened then (Wikipedia, reference pages). A range relative to today
  ("오늘", "지난주", "최근 3일", "last week") is about publication, so undated
  articles are left out, as with an explicit filter.
- "최근"/"latest" asks for newer articles first; on an index with fewer than two
  publication days there is nothing to prefer, so retrieval is unchanged
  (``applied=False``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.records import Hit
from rag.search.retrieve import Filters
from rag.search.timeexpr import TimeRange, reference_day, resolve_time

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class TimeScope:
    """The publication dates an answer or a search covered, and why."""

    date_from: str
    date_to: str
    source: str  # "question" (time words) or "filter" (explicit --from/--to, API, page)
    expression: str = ""  # the question's time words
    recent: bool = False  # newer articles preferred, relevance first
    applied: bool = True  # False: no indexed article is dated in the range (or none to prefer), so all were searched
    undated: bool = False  # articles without a date were searched too (a range naming calendar dates)

    def to_json(self) -> dict[str, Any]:
        return {"from": self.date_from, "to": self.date_to, "source": self.source,
                "expression": self.expression, "recent": self.recent, "applied": self.applied,
                "undated": self.undated}


def days(published: Sequence[str]) -> list[str]:
    """The ISO days among publication dates (undated and non-ISO ones left out)."""
    return [p[:10] for p in published if _ISO_DAY.fullmatch(p[:10])]


def scope(
    question: str, filters: Filters | None, now: str = "", question_time: bool = True,
    published: Sequence[str] | None = None,
) -> tuple[Filters | None, TimeScope | None]:
    """The filters to search with and the time scope to report.

    Args:
        filters: explicit filters; their dates win over the question's.
        now: reference day YYYY-MM-DD ("" = today); RagError when malformed.
        question_time: False when the user removed the question's range (page chip, API, CLI).
        published: publication dates of the indexed articles (None: not known, every range applies).
    """
    explicit = filters is not None and bool(filters.date_from or filters.date_to)
    found: TimeRange | None = resolve_time(question, reference_day(now)) if question_time else None
    known = None if published is None else days(published)
    can_prefer = known is None or len(set(known)) >= 2
    recent = bool(found and found.recent and can_prefer)
    if explicit:
        assert filters is not None
        return replace(filters, recent=recent), TimeScope(filters.date_from, filters.date_to, "filter",
                                                          recent=recent)
    if found is None:
        return filters, None
    if not found.has_range():
        if not recent:  # nothing dated to prefer: retrieval exactly as without the word
            return filters, TimeScope("", "", "question", found.expression, recent=True, applied=False)
        return replace(filters or Filters(), recent=True), TimeScope("", "", "question", found.expression, True)
    applied = known is None or any(found.date_from <= d <= found.date_to for d in known)
    undated = applied and found.calendar and (published is None or len(known or []) < len(published))
    if not applied and not recent:
        return filters, TimeScope(found.date_from, found.date_to, "question", found.expression, False, False)
    out = replace(filters or Filters(), recent=recent)
    if applied:
        out = replace(out, date_from=found.date_from, date_to=found.date_to, undated=undated)
    return out, TimeScope(found.date_from, found.date_to, "question", found.expression, recent, applied, undated)


def without_time_words(question: str, ts: TimeScope | None) -> str:
    """The question without the time words that became its applied date range: the rest is what it asks
    about ("지난주 K-AI 소식은?" -> "K-AI 소식은?"), so "August" is not taken for the asked subject.
    Unchanged when no question range was applied."""
    if ts is None or ts.source != "question" or not ts.applied or not ts.date_from or not ts.expression:
        return question
    rest = question.replace(ts.expression, " ", 1)
    rest = re.sub(r"^(?:'s|의)\s+", "", " ".join(rest.split()))
    rest = re.sub(r"\s+([?.,!])", r"\1", rest).strip(" ,")
    return rest if re.search(r"\w", rest) else question


def search_scoped(
    retriever: Any, questions: Sequence[str], k: int | None = None, filters: Filters | None = None,
    now: str = "", question_time: bool = True, mode: str = "hybrid",
) -> list[tuple[list[Hit], TimeScope | None]]:
    """``retriever.search_batch`` with each question's time words resolved as answers resolve them
    (:func:`scope`, then :func:`without_time_words`); questions that end up with the same filters are
    searched in one batch. ``question_time=False``: the plain ``search_batch``."""
    published = [m.get("published", "") for m in retriever.index.docs.values()]
    scoped = [scope(q, filters, now, question_time, published) for q in questions]
    groups: dict[Filters | None, list[int]] = {}
    for i, (f, _) in enumerate(scoped):
        groups.setdefault(f, []).append(i)
    hits: list[list[Hit]] = [[] for _ in questions]
    for f, idx in groups.items():
        asked = [without_time_words(questions[i], scoped[i][1]) for i in idx]
        for i, found in zip(idx, retriever.search_batch(asked, k=k, filters=f, mode=mode), strict=True):
            hits[i] = found
    return [(h, ts) for h, (_, ts) in zip(hits, scoped, strict=True)]
