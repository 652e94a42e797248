"""Time words in questions -> date ranges (pure; RAG_NOW-style fixed reference day)."""

from __future__ import annotations

import datetime as dt

import pytest

from rag.errors import RagError
from rag.records import Chunk, Hit
from rag.search.timeexpr import prefer_recent, reference_day, resolve_time

NOW = dt.date(2025, 8, 13)  # a Wednesday


@pytest.mark.parametrize(
    ("question", "start", "end", "recent"),
    [
        ("지난주 K-AI 관련 소식은?", "2025-08-04", "2025-08-10", False),
        ("오늘 나온 기사", "2025-08-13", "2025-08-13", False),
        ("어제 발표된 내용은?", "2025-08-12", "2025-08-12", False),
        ("이번 주 평가 일정은?", "2025-08-11", "2025-08-17", False),
        ("이번 달 소식", "2025-08-01", "2025-08-31", False),
        ("지난달 전력 수요", "2025-07-01", "2025-07-31", False),
        ("올해 8월 로봇법", "2025-08-01", "2025-08-31", False),
        ("8월 초 선정된 팀", "2025-08-01", "2025-08-10", False),
        ("7월 말 수출", "2025-07-21", "2025-07-31", False),
        ("2025년 8월 12일 기사", "2025-08-12", "2025-08-12", False),
        ("작년 AI 예산", "2024-01-01", "2024-12-31", False),
        ("최근 7일 기사", "2025-08-07", "2025-08-13", False),
        ("What happened today?", "2025-08-13", "2025-08-13", False),
        ("news from last week", "2025-08-04", "2025-08-10", False),
        ("What did yesterday's report say?", "2025-08-12", "2025-08-12", False),
        ("exports in August 2025", "2025-08-01", "2025-08-31", False),
        ("What happened on Aug 5, 2025?", "2025-08-05", "2025-08-05", False),
        ("chip exports in early August", "2025-08-01", "2025-08-10", False),
        ("in the past 3 days", "2025-08-11", "2025-08-13", False),
        ("the latest news in August 2025", "2025-08-01", "2025-08-31", True),
        ("10월 초 행사", "2024-10-01", "2024-10-10", False),  # a month still to come: last year's
        ("이번 주말에 비 와?", "2025-08-16", "2025-08-17", False),  # the weekend, not the whole week
        ("지난 주말 행사", "2025-08-09", "2025-08-10", False),
        ("What happened last weekend?", "2025-08-09", "2025-08-10", False),
    ],
)
def test_ranges(question: str, start: str, end: str, recent: bool) -> None:
    r = resolve_time(question, NOW)
    assert r is not None and (r.date_from, r.date_to, r.recent) == (start, end, recent)
    assert r.expression and r.expression in question


@pytest.mark.parametrize("question", ["What is the latest on the K-AI programme?", "최근 K-AI 참여 팀 수는?",
                                      "most recent figures", "요즘 AI 반도체 소식"])
def test_latest_is_a_preference_not_a_range(question: str) -> None:
    r = resolve_time(question, NOW)
    assert r is not None and r.recent and not r.has_range()


@pytest.mark.parametrize("question", [
    "K-AI 사업 참여 팀은 몇 곳인가?", "2025년 예산안은?", "8월 출시 예정 제품", "8월 15일 광복절 행사",
    "What should you do if you get caught in a current?", "How many teams are in the K-AI programme?",
    "blast weekly", "What is 2025 revenue?",
])
def test_no_time_words_no_range(question: str) -> None:
    assert resolve_time(question, NOW) is None


def test_calendar_dates_are_told_from_spans_before_today() -> None:
    """A range naming calendar dates keeps undated articles (rag.search.timescope); "last week" does not."""
    for q in ("2025년 8월 수출", "8월 초 선정된 팀", "in August 2025", "1989년 6월 30일 평양축전"):
        r = resolve_time(q, NOW)
        assert r is not None and r.calendar, q
    for q in ("지난주 소식", "오늘 기사", "last week", "최근 7일", "this year"):
        r = resolve_time(q, NOW)
        assert r is not None and not r.calendar, q


def test_reference_day() -> None:
    assert reference_day("2025-08-13") == NOW
    assert reference_day("") == dt.date.today()
    with pytest.raises(RagError, match="YYYY-MM-DD"):
        reference_day("13/08/2025")


def _hit(doc: str, score: float, published: str) -> Hit:
    return Hit(rank=0, score=score, chunk=Chunk(f"{doc}#0", doc, "t", 0, 1), published=published)


def test_prefer_recent_keeps_relevance_first() -> None:
    hits = [_hit("old", 0.9, "2025-07-01"), _hit("new", 0.85, "2025-08-12"), _hit("none", 0.86, ""),
            _hit("weak", 0.3, "2025-08-13")]
    out = prefer_recent(hits)
    assert [h.chunk.doc_id for h in out] == ["new", "old", "none", "weak"]  # close in relevance: newer first
    assert [h.rank for h in out] == [1, 2, 3, 4]
    assert prefer_recent(hits[2:3]) == hits[2:3]  # nothing to compare: unchanged
