"""Time words in a question -> a publication date range (pure, no I/O).

``resolve_time("지난주 K-AI 관련 소식은?", date(2025, 8, 13))`` gives the range
2025-08-04 ~ 2025-08-10: questions about news are questions about *when*, and
the words that say it ("오늘", "어제", "지난주", "이번 달", "올해 8월", "8월 초",
"작년", "today", "last week", "in August 2025", "early August", "past 3 days")
become a filter on the articles' publication dates. "최근", "최신", "latest",
"recent" say no range: they ask for a *preference* for newer articles that
keeps relevance first (:func:`prefer_recent`).

Deliberately not recognised, because in news questions they name what the
article is about more often than when it was published: a bare year ("2025년
예산"), a bare month ("8월 출시"), a bare day ("8월 15일 광복절"). A year or a
month counts only with a qualifier ("올해 8월", "2025년 8월", "8월 초",
"in August 2025", "in 2025").
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rag.errors import RagError
from rag.records import Hit

RECENCY_WEIGHT = 0.1  # added to a fused score (0..1) for the newest hit: relevance stays first
_MONTHS_EN = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS_EN.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS_EN["sept"] = 9
_MON = r"(?P<mon>" + "|".join(sorted(_MONTHS_EN, key=len, reverse=True)) + r")\.?"


@dataclass(frozen=True)
class TimeRange:
    """What a question says about time: an inclusive ISO date range and/or a recency preference."""

    date_from: str = ""  # "YYYY-MM-DD" or "" (open)
    date_to: str = ""
    expression: str = ""  # the words that said it, as written in the question
    recent: bool = False  # "latest" / "최근": prefer newer articles, relevance first
    calendar: bool = False  # names calendar dates ("2025년 8월", "8월 초", "in August 2025"), not a span before today

    def has_range(self) -> bool:
        return bool(self.date_from or self.date_to)


Day = dt.date
_Handler = Callable[[re.Match[str], Day], tuple[Day, Day] | None]


def _week(today: Day, weeks_back: int) -> tuple[Day, Day]:
    monday = today - dt.timedelta(days=today.weekday() + 7 * weeks_back)
    return monday, monday + dt.timedelta(days=6)


def _weekend(today: Day, weeks_back: int) -> tuple[Day, Day]:
    monday, sunday = _week(today, weeks_back)
    return monday + dt.timedelta(days=5), sunday


def _month(year: int, month: int) -> tuple[Day, Day]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _months_back(today: Day, n: int) -> tuple[Day, Day]:
    y, m = divmod(today.year * 12 + today.month - 1 - n, 12)
    return _month(y, m + 1)


def _part(first: Day, last: Day, part: str) -> tuple[Day, Day]:
    """Early (1-10), mid (11-20) or late (21-end) part of a month."""
    if part in ("초", "초순", "early", "the beginning of"):
        return first, first.replace(day=10)
    if part in ("중순", "mid", "mid-", "the middle of"):
        return first.replace(day=11), first.replace(day=20)
    if part in ("말", "하순", "late", "the end of"):
        return first.replace(day=21), last
    return first, last


def _year_of(m: re.Match[str], today: Day) -> int | None:
    """The year a month expression names: explicit, relative, or None (= the most recent such month)."""
    g = m.groupdict()
    if g.get("y"):
        return int(g["y"])
    rel = (g.get("rel") or "").lower()
    if rel in ("올해", "this year", "금년"):
        return today.year
    if rel in ("작년", "지난해", "last year"):
        return today.year - 1
    if rel == "재작년":
        return today.year - 2
    return None


def _month_range(m: re.Match[str], today: Day) -> tuple[Day, Day] | None:
    mon = m.group("m") if "m" in m.groupdict() and m.group("m") else None
    month = int(mon) if mon else _MONTHS_EN.get((m.groupdict().get("mon") or "").lower().rstrip("."), 0)
    if not 1 <= month <= 12:
        return None
    year = _year_of(m, today)
    if year is None:  # "8월 초" / "early August": the most recent such month, this year or last
        year = today.year if month <= today.month else today.year - 1
    first, last = _month(year, month)
    return _part(first, last, (m.groupdict().get("part") or "").strip().lower())


def _day_range(m: re.Match[str], today: Day) -> tuple[Day, Day] | None:
    g = m.groupdict()
    month = int(g["m"]) if g.get("m") else _MONTHS_EN.get((g.get("mon") or "").lower().rstrip("."), 0)
    try:
        day = dt.date(int(g["y"]), month, int(g["d"]))
    except ValueError:
        return None
    return day, day


def _last_n(m: re.Match[str], today: Day) -> tuple[Day, Day] | None:
    n = int(m.group("n"))
    unit = m.group("unit").lower()
    weeks, months = ("주", "주일", "week", "weeks"), ("개월", "달", "month", "months")
    days = n * (7 if unit in weeks else 30 if unit in months else 1)
    if not 0 < days <= 3660:
        return None
    return today - dt.timedelta(days=days - 1), today


def _fixed(fn: Callable[[Day], tuple[Day, Day]]) -> _Handler:
    return lambda _m, today: fn(today)


_KO_PART = r"(?:\s*(?P<part>초순|중순|하순|초|말))?"
_EN_PART = r"(?:(?P<part>early|mid-?|late|the beginning of|the middle of|the end of)\s+)?"
_B = r"(?<![\w])"  # no letter or digit right before
_E = r"(?![A-Za-z0-9])"  # English words end here (Korean particles may follow Korean words)

# (pattern, handler); the longest match wins, then the earliest
_PATTERNS: Sequence[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(_B + r"(?P<y>\d{4})\s*년\s*(?P<m>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일"), _day_range),
    (re.compile(_B + r"(?:(?P<y>\d{4})\s*년|(?P<rel>올해|금년|작년|지난해|재작년))\s*(?P<m>\d{1,2})\s*월" + _KO_PART),
     _month_range),
    (re.compile(_B + r"(?P<m>\d{1,2})\s*월" + r"\s*(?P<part>초순|중순|하순|초|말)"), _month_range),
    (re.compile(_B + r"(?:최근|지난)\s*(?P<n>\d{1,3})\s*(?P<unit>일|주일|주|개월|달)(?:간|동안)?"), _last_n),
    (re.compile(r"(?i)\b(?:(?:in|during|over)\s+)?(?:the\s+)?(?:past|last)\s+(?P<n>\d{1,3})\s+"
                r"(?P<unit>days?|weeks?|months?)\b"), _last_n),
    (re.compile(r"(?i)\b(?:on\s+)?" + _MON + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})" + _E), _day_range),
    (re.compile(r"(?i)\b(?:in\s+)?" + _EN_PART + _MON + r",?\s+(?:of\s+)?(?P<y>\d{4})" + _E), _month_range),
    (re.compile(r"(?i)\b(?:in\s+)?" + _EN_PART + _MON + r"\s+(?P<rel>this year|last year)\b"), _month_range),
    (re.compile(r"(?i)\b(?:in\s+)?(?P<part>early|mid-?|late|the beginning of|the middle of|the end of)\s*"
                + _MON + _E), _month_range),
    (re.compile(_B + r"오늘"), _fixed(lambda t: (t, t))),
    (re.compile(_B + r"(?:어제|어저께)"), _fixed(lambda t: (t - dt.timedelta(1), t - dt.timedelta(1)))),
    (re.compile(_B + r"(?:그제|그저께)"), _fixed(lambda t: (t - dt.timedelta(2), t - dt.timedelta(2)))),
    (re.compile(_B + r"(?:이번\s*주|금주)"), _fixed(lambda t: _week(t, 0))),
    (re.compile(_B + r"(?:지난\s*주|저번\s*주)"), _fixed(lambda t: _week(t, 1))),
    (re.compile(_B + r"(?:이번\s*주말|금주\s*주말)"), _fixed(lambda t: _weekend(t, 0))),
    (re.compile(_B + r"(?:지난\s*주말|저번\s*주말)"), _fixed(lambda t: _weekend(t, 1))),
    (re.compile(_B + r"(?:이번\s*달|이달|금월)"), _fixed(lambda t: _months_back(t, 0))),
    (re.compile(_B + r"(?:지난\s*달|저번\s*달|전월)"), _fixed(lambda t: _months_back(t, 1))),
    (re.compile(_B + r"(?:올해|금년)"), _fixed(lambda t: _month(t.year, 1)[:1] + _month(t.year, 12)[1:])),
    (re.compile(_B + r"(?:작년|지난해)"), _fixed(lambda t: (dt.date(t.year - 1, 1, 1), dt.date(t.year - 1, 12, 31)))),
    (re.compile(_B + r"재작년"), _fixed(lambda t: (dt.date(t.year - 2, 1, 1), dt.date(t.year - 2, 12, 31)))),
    (re.compile(r"(?i)\btoday(?:'s)?\b"), _fixed(lambda t: (t, t))),
    (re.compile(r"(?i)\byesterday(?:'s)?\b"), _fixed(lambda t: (t - dt.timedelta(1), t - dt.timedelta(1)))),
    (re.compile(r"(?i)\bthis\s+week(?:'s)?\b"), _fixed(lambda t: _week(t, 0))),
    (re.compile(r"(?i)\b(?:last|past|previous)\s+week(?:'s)?\b"), _fixed(lambda t: _week(t, 1))),
    (re.compile(r"(?i)\bthis\s+weekend(?:'s)?\b"), _fixed(lambda t: _weekend(t, 0))),
    (re.compile(r"(?i)\b(?:last|past|previous)\s+weekend(?:'s)?\b"), _fixed(lambda t: _weekend(t, 1))),
    (re.compile(r"(?i)\bthis\s+month(?:'s)?\b"), _fixed(lambda t: _months_back(t, 0))),
    (re.compile(r"(?i)\b(?:last|previous)\s+month(?:'s)?\b"), _fixed(lambda t: _months_back(t, 1))),
    (re.compile(r"(?i)\bthis\s+year(?:'s)?\b"), _fixed(lambda t: (dt.date(t.year, 1, 1), dt.date(t.year, 12, 31)))),
    (re.compile(r"(?i)\b(?:last|previous)\s+year(?:'s)?\b"),
     _fixed(lambda t: (dt.date(t.year - 1, 1, 1), dt.date(t.year - 1, 12, 31)))),
]
_RECENT = re.compile(
    r"(?i)(?:최근|최신|요즘|근래|가장\s*새로운|\blatest\b|\brecent(?:ly)?\b|\bnewest\b|\bmost\s+recent\b|\bthese\s+days\b"
    r"|\bup[- ]to[- ]date\b)"
)


def resolve_time(question: str, today: Day) -> TimeRange | None:
    """The date range and/or recency preference ``question`` states, relative to ``today``; None when it
    states neither (then nothing about retrieval changes)."""
    best: tuple[int, int, re.Match[str], _Handler] | None = None
    for rx, handler in _PATTERNS:
        for m in rx.finditer(question):
            key = (-(m.end() - m.start()), m.start())
            if best is None or key < best[:2]:
                best = (*key, m, handler)
    recent = _RECENT.search(question)
    if best is not None:
        span = best[3](best[2], today)
        if span is not None:
            a, b = span
            m = best[2]
            outside = recent is not None and (recent.end() <= m.start() or recent.start() >= m.end())
            named = best[3] in (_month_range, _day_range)
            return TimeRange(a.isoformat(), b.isoformat(), m.group(0).strip(), recent=outside, calendar=named)
    if recent:
        return TimeRange(expression=recent.group(0), recent=True)
    return None


def reference_day(now: str = "") -> Day:
    """The day time words are resolved against: ``now`` (``RAG_NOW`` / ``--now``, YYYY-MM-DD) or today."""
    if not now.strip():
        return dt.date.today()
    try:
        return dt.date.fromisoformat(now.strip()[:10])
    except ValueError:
        raise RagError(f"RAG_NOW / --now: {now!r} is not a date; write YYYY-MM-DD, e.g. 2025-08-13 "
                         "/ 기준 날짜는 YYYY-MM-DD 형식으로 쓰세요") from None


def prefer_recent(hits: Sequence[Hit], weight: float = RECENCY_WEIGHT) -> list[Hit]:
    """Hits re-ranked by relevance plus a small bonus for newer articles (newest +``weight``,
    oldest or undated +0), ranks renumbered. Relevance stays first: the bonus is at most ``weight``."""
    days = [_ordinal(h.published) for h in hits]
    dated = [d for d in days if d is not None]
    if len(set(dated)) < 2:
        return list(hits)
    lo, hi = min(dated), max(dated)
    scored = [
        (h.score + (weight * (d - lo) / (hi - lo) if d is not None else 0.0), i, h)
        for i, (h, d) in enumerate(zip(hits, days, strict=True))
    ]
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [replace(h, rank=r, score=s) for r, (s, _, h) in enumerate(scored, 1)]


def _ordinal(published: str) -> int | None:
    try:
        return dt.date.fromisoformat(published[:10]).toordinal()
    except ValueError:
        return None
