"""Time in answers: the date range a question searched, and dates named in the answer text.

:func:`scope` (:mod:`rag.search.timescope`, shared with ``rag search`` and
``rag eval``) decides which publication dates an answer searches; :func:`label`
says so in one line shown with the answer.

:func:`name_dates` rewrites an extractive answer so that each quote says who
reported it and when ("2025-08-05 바이라인네트워크 보도에 따르면 … [1]") when the
question is about time or the cited articles span more than a week; an
undated article is said to be undated, never given a date. An LLM answer keeps
its wording and gains one line with each citation's outlet and date ("출처:
[1] 2025-08-08 테크데일리; [2] 날짜 없는 테크데일리 기사"), unless it already names
every cited date. Conflicting reports
across dated articles are handled by :mod:`rag.answer.conflicts`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from rag.records import Answer, Citation, Sentence
from rag.search.timescope import TimeScope, days, scope, without_time_words

__all__ = ["TimeScope", "finish", "label", "name_dates", "scope", "source_phrase", "with_scope", "without_time_words"]

SPAN_DAYS = 7  # cited articles further apart than this get their dates named in the answer
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _days(published: list[str]) -> list[str]:
    return days(published)


def label(ts: TimeScope, lang: str, abstained: bool = False) -> str:
    """One line shown with the answer: which dates were searched."""
    ko = lang == "ko"
    rng = f"{ts.date_from or '…'} ~ {ts.date_to or '…'}"
    if not ts.date_from and not ts.date_to:
        if not ts.applied:
            return ("기사에 날짜가 없어 최신 기사를 우선할 수 없었습니다" if ko
                    else "The articles have no dates, so newer ones could not be ranked first")
        return ("최신 기사를 우선했습니다 (관련성이 먼저입니다)" if ko
                else "Newer articles ranked first among relevant ones")
    if not ts.applied:
        return (f"{rng}에 나온 기사가 없어 전체 기사에서 찾았습니다" if ko
                else f"No article was published {rng}; searched all articles")
    where = (f"{rng} 기사와 날짜 없는 기사" if ko else f"articles published {rng} and undated ones") if ts.undated \
        else (f"{rng} 기사" if ko else f"articles published {rng}")
    if abstained:
        return f"{where}에서 찾아보았습니다" if ko else f"Searched {where}"
    return f"{where}에서 찾았습니다" if ko else f"Found in {where}"


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
    if a.abstained or not a.citations or "conflict" in a.extra:
        return a
    if not about_time and _spread_days(a.citations) <= SPAN_DAYS:
        return a
    if a.mode != "extractive":
        return _sources_line(a)
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


def _sources_line(a: Answer) -> Answer:
    """An LLM answer (its own wording) followed by one line giving each citation's outlet and date, or
    saying it is undated, unless the text already names every cited date and nothing cited is undated."""
    days = [c.published[:10] if _ISO_DAY.fullmatch(c.published[:10]) else "" for c in a.citations]
    if all(d and d in a.answer for d in days):
        return a
    ko = a.lang == "ko"
    parts = []
    for c, day in zip(a.citations, days, strict=True):
        who = c.outlet or c.title or c.doc_id
        if ko:
            parts.append(f"[{c.n}] {day} {who}" if day else f"[{c.n}] 날짜 없는 {who} 기사")
        else:
            parts.append(f"[{c.n}] {who} ({day})" if day else f"[{c.n}] {who} (undated article)")
    line = ("출처: " if ko else "Sources: ") + ("; ".join(parts))
    return replace(a, answer=f"{a.answer}\n{line}", sentences=(*a.sentences, Sentence(line, (), True)))


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
