"""Time in answers: the date range a question searched, and dates named in the answer text.

:func:`scope` decides which publication dates an answer searches: an explicit
filter (CLI ``--from/--to``, API ``from/to``, the page) wins; else the time
words of the question (:mod:`rag.search.timeexpr`) against the reference day
(``RAG_NOW`` / ``--now``, default today). A question range that no indexed
article falls in is not applied (the answer says so and searches everything):
"1989년 6월 30일 평양축전" names when something happened, not when the article
appeared, and an index without such dates must still answer it.

:func:`name_dates` rewrites an extractive answer so that each quote says who
reported it and when ("2025-08-05 바이라인네트워크 보도에 따르면 … [1]") when the
question is about time or the cited articles span more than a week; an
undated article is said to be undated, never given a date. Conflicting reports
across dated articles are handled by :mod:`rag.answer.conflicts`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any

from rag.records import Answer, Citation, Sentence
from rag.search.retrieve import Filters
from rag.search.timeexpr import TimeRange, reference_day, resolve_time

SPAN_DAYS = 7  # cited articles further apart than this get their dates named in the answer
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class TimeScope:
    """The publication dates an answer searched, and why."""

    date_from: str
    date_to: str
    source: str  # "question" (time words) or "filter" (explicit --from/--to, API, page)
    expression: str = ""  # the question's time words
    recent: bool = False  # newer articles preferred, relevance first
    applied: bool = True  # False: no indexed article is dated in the range, so all were searched

    def to_json(self) -> dict[str, Any]:
        return {"from": self.date_from, "to": self.date_to, "source": self.source,
                "expression": self.expression, "recent": self.recent, "applied": self.applied}


def scope(
    question: str, filters: Filters | None, now: str = "", question_time: bool = True,
    published: list[str] | None = None,
) -> tuple[Filters | None, TimeScope | None]:
    """The filters to search with and the time scope to report.

    Args:
        filters: explicit filters; their dates win over the question's.
        now: reference day YYYY-MM-DD ("" = today); ValueError when malformed.
        question_time: False when the user removed the question's range (page chip, API).
        published: publication dates of the indexed articles; a question range none falls in
            is reported with ``applied=False`` and not used.
    """
    explicit = filters is not None and bool(filters.date_from or filters.date_to)
    found: TimeRange | None = resolve_time(question, reference_day(now)) if question_time else None
    recent = bool(found and found.recent)
    if explicit:
        assert filters is not None
        return replace(filters, recent=recent), TimeScope(filters.date_from, filters.date_to, "filter",
                                                          recent=recent)
    if found is None:
        return filters, None
    base = filters or Filters()
    if not found.has_range():
        return replace(base, recent=True), TimeScope("", "", "question", found.expression, recent=True)
    applied = published is None or any(found.date_from <= d <= found.date_to for d in _days(published))
    out = replace(base, recent=recent)
    if applied:
        out = replace(out, date_from=found.date_from, date_to=found.date_to)
    return out, TimeScope(found.date_from, found.date_to, "question", found.expression, recent, applied)


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


def _days(published: list[str]) -> list[str]:
    return [p[:10] for p in published if _ISO_DAY.fullmatch(p[:10])]


def label(ts: TimeScope, lang: str, abstained: bool = False) -> str:
    """One line shown with the answer: which dates were searched."""
    ko = lang == "ko"
    rng = f"{ts.date_from or '…'} ~ {ts.date_to or '…'}"
    if not ts.date_from and not ts.date_to:
        return ("최신 기사를 우선했습니다 (관련성이 먼저입니다)" if ko
                else "Newer articles ranked first among relevant ones")
    if not ts.applied:
        return (f"{rng}에 나온 기사가 없어 전체 기사에서 찾았습니다" if ko
                else f"No article was published {rng}; searched all articles")
    if abstained:
        return f"{rng} 기사에서 찾아보았습니다" if ko else f"Searched articles published {rng}"
    return f"{rng} 기사에서 찾았습니다" if ko else f"Found in articles published {rng}"


def with_scope(a: Answer, ts: TimeScope | None) -> Answer:
    """The answer carrying its time scope (``Answer.time``) and the line that shows it."""
    if ts is None:
        return a
    data = ts.to_json()
    data["label"] = label(ts, a.lang, a.abstained)
    return replace(a, time=data)


def _spread_days(citations: tuple[Citation, ...]) -> int:
    days = [dt.date.fromisoformat(d) for d in _days([c.published for c in citations])]
    return (max(days) - min(days)).days if days else 0


def source_phrase(c: Citation, lang: str) -> str:
    """"2025-08-05 바이라인네트워크 보도에 따르면" / "According to Byline Network (2025-08-05)"; undated
    articles are named as undated."""
    day = c.published[:10] if _ISO_DAY.fullmatch(c.published[:10]) else ""
    who = c.outlet or c.title or c.doc_id
    if lang == "ko":
        return f"{day} {who} 보도에 따르면" if day else f"날짜가 없는 {who} 기사에 따르면"
    return f"According to {who} ({day}):" if day else f"According to {who} (undated article):"


def name_dates(a: Answer, about_time: bool) -> Answer:
    """Each quoted sentence of an extractive answer led by its source's outlet and date, when the
    question is about time or the citations span more than ``SPAN_DAYS`` days."""
    if a.abstained or a.mode != "extractive" or not a.citations or "conflict" in a.extra:
        return a
    if not about_time and _spread_days(a.citations) <= SPAN_DAYS:
        return a
    by_n = {c.n: c for c in a.citations}
    sentences, texts = [], []
    for s in a.sentences:
        if len(s.citations) == 1 and s.citations[0] in by_n and "보도에 따르면" not in s.text:
            s = Sentence(f"{source_phrase(by_n[s.citations[0]], a.lang)} {s.text}", s.citations, s.supported)
        sentences.append(s)
        texts.append(s.text)
    # the language note (if any) ends with ":" and sits on its own line, as in rag.answer.compose
    first, rest = (texts[0], texts[1:]) if texts and not sentences[0].citations else ("", texts)
    body = " ".join(rest)
    return replace(a, answer=f"{first}\n{body}" if first else body, sentences=tuple(sentences))


def finish(a: Answer, ts: TimeScope | None, docs: dict[str, dict[str, str]] | None = None,
           question: str = "") -> Answer:
    """The final answer: dates named where they matter, conflicting reports ordered, scope attached,
    citations listing the other outlets of a syndicated story (``docs``: the index's document metadata)."""
    from rag.answer.conflicts import order_conflicts

    about_time = ts is not None and ts.source == "question"
    if question and a.question != question:  # answered without its time words: report the question as asked
        resolved = question if a.resolved_question == a.question else a.resolved_question
        a = replace(a, question=question, resolved_question=resolved)
    if docs and any(docs.get(c.doc_id, {}).get("also") for c in a.citations):
        cites = tuple(replace(c, also=docs.get(c.doc_id, {}).get("also", "")) for c in a.citations)
        a = replace(a, citations=cites)
    a = order_conflicts(a)
    return with_scope(name_dates(a, about_time), ts)
