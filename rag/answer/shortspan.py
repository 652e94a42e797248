"""The short answer inside a quoted sentence, and Korean dates and amounts written for English readers.

:func:`short_span` finds the short answer to a question inside the lead sentence
(a date, a number with its counter, an amount, a name of the wanted type); it
never returns text that is not in the sentence. :func:`in_english` writes such
a span for an English reader ("12월 말" -> "late December"). Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.askedfact import _COUNTERS, _KO_NUMERALS
from rag.answer.nearmiss import _norm, asked_words, names
from rag.answer.support import answer_type, token_set

_PARTICLE_RE = re.compile(r"(에서|으로|에게|까지|부터|이며|이다|이고|에는|에|의|은|는|이|가|을|를|로|과|와|도|만)$")
_KO_DATE = (
    r"(?:\d{4}년\s*)?(?:\d{1,2}월\s*)?(?:\d{1,2}일)|(?:\d{4}년\s*)?\d{1,2}월(?:\s*(?:초|말|중순|하순|초순))?|\d{4}년"
)
_EN_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s+\d{4})?"
)
_TIME_SPAN_RE = re.compile(
    rf"{_KO_DATE}|{_EN_MONTH}|\b(?:19|20)\d\d\b|(?:올해|지난해|내년)\s*(?:상반기|하반기)?|상반기|하반기"
)
_NUMBER_SPAN_RE = re.compile(
    rf"\d[\d,.]*(?:\s*[억만천조])*\s*[가-힣%]{{0,4}}|\d[\d,.]*\s*(?:percent|million|billion)?|"
    rf"(?<![가-힣])(?:{_KO_NUMERALS})\s+(?:{_COUNTERS})"
)
_DATE_UNIT_RE = re.compile(r"\d\s*(년|월|일|시|분|초)")
_COUNTER_RE = re.compile(rf"(?:{_COUNTERS}|%|원|달러|percent|million|billion)")
_MONEY_RE = re.compile(r"원|달러|\$|€|£|dollar|won\b|euro", re.I)


@dataclass(frozen=True)
class Short:
    """A short answer inside a sentence: ``text == sentence[start:end]``."""

    text: str
    start: int
    end: int


def short_span(question: str, sentence: str) -> Short | None:
    """The short answer to ``question`` inside ``sentence`` (offsets into the sentence), or None."""
    want = answer_type(question)
    if want == "time":
        return _nearest(_spans(_TIME_SPAN_RE, sentence, question), sentence, question)
    if want in {"number", "money"}:
        found = [m for m in _spans(_NUMBER_SPAN_RE, sentence, question) if not _DATE_UNIT_RE.match(m.text)]
        counted_ = [m for m in found if _COUNTER_RE.search(m.text)]
        found = counted_ or found  # "세 곳" before a bare "80"
        if want == "money":
            found = [m for m in found if _MONEY_RE.search(m.text)] or found
        return _nearest(found, sentence, question)
    if want == "name":
        asked = {_norm(n) for n in names(question)}
        words = asked_words(question)
        found = []
        for n in names(sentence):
            i = sentence.find(n)
            if i >= 0 and _norm(n) not in asked and not any(_norm(n) in a for a in asked):
                found.append(Short(n, i, i + len(n)))
        # "참여한 대학은 어디야?" -> the name that holds an asked word ("고려대학교"), else the first
        return next((f for f in found if any(w in f.text for w in words if len(w) > 1)), found[0] if found else None)
    return None


def _spans(rx: re.Pattern[str], sentence: str, question: str) -> list[Short]:
    out = []
    for m in rx.finditer(sentence):
        text = _PARTICLE_RE.sub("", m.group().rstrip(" ,.")) if re.search(r"[가-힣]$", m.group()) else m.group()
        text = text.rstrip(" ,.")
        if not text or not any(ch.isdigit() or ch.isalpha() for ch in text) or text in question:
            continue
        out.append(Short(text, m.start(), m.start() + len(text)))
    return out


_EN_NUMBERS = {
    w: str(i)
    for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])
}
WINDOW = 30  # characters on each side of a candidate span that are compared with the question


def _anchors(question: str) -> set[str]:
    """What a span's neighbourhood can share with the question: its words and numbers
    (English number words as digits, so "five teams to four" meets "5개팀에서 4개팀으로")."""
    found = set(token_set(question))
    found |= set(re.findall(r"\d+", question))
    found |= {d for w, d in _EN_NUMBERS.items() if re.search(rf"\b{w}\b", question, re.I)}
    return {a for a in found if a}


def _nearest(found: list[Short], sentence: str, question: str) -> Short | None:
    """The candidate whose neighbourhood holds most of the question's anchors (ties: the first)."""
    if len(found) <= 1:
        return found[0] if found else None
    anchors = _anchors(question)

    def near(c: Short) -> int:
        window = sentence[max(0, c.start - WINDOW) : c.start] + " " + sentence[c.end : c.end + WINDOW]
        return sum(1 for a in anchors if a in window)

    return max(found, key=lambda c: (near(c), -c.start))


# ------------------------------------------------------------------ English renderings

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_PART = {"초": "early ", "초순": "early ", "중순": "mid-", "말": "late ", "하순": "late "}
_KO_DATE_RE = re.compile(r"^(?:(\d{4})년\s*)?(?:(\d{1,2})월\s*)?(?:(\d{1,2})일)?\s*(초순|초|중순|하순|말)?$")
_KO_VALUES = {w: i for i, w in enumerate(["한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉", "열"], 1)}
_KO_COUNT_RE = re.compile(r"^(한|두|세|네|다섯|여섯|일곱|여덟|아홉|열)\s+[가-힣]{1,2}$")
_UNITS = {"조": 10**12, "억": 10**8, "만": 10**4, "천": 10**3}
_KO_NUMBER_RE = re.compile(r"^(\d[\d,.]*)\s*([조억만천]?)\s*(원|달러)?")


def in_english(text: str) -> str:
    """A Korean date or amount written for an English reader ("12월 말" -> "late December",
    "300억원" -> "30 billion won", "18개" -> "18"); other text is returned unchanged."""
    m = _KO_DATE_RE.match(text.strip())
    if m and any(m.groups()[:3]):
        year, month, day, part = m.groups()
        out = ""
        if month and 1 <= int(month) <= 12:
            out = _PART.get(part or "", "") + _MONTHS[int(month) - 1] + (f" {int(day)}" if day else "")
        elif day:
            out = f"day {int(day)}"
        return f"{out} {year}".strip() if year else out or text
    m = _KO_COUNT_RE.match(text.strip())
    if m:
        return str(_KO_VALUES[m.group(1)])
    m = _KO_NUMBER_RE.match(text.strip())
    if m and (m.group(2) or m.group(3) or re.search(r"[가-힣]", text)):
        value = float(m.group(1).replace(",", "")) * _UNITS.get(m.group(2), 1)
        currency = {"원": " won", "달러": " dollars"}.get(m.group(3) or "", "")
        return _big(value) + currency
    return text


def _big(value: float) -> str:
    for size, word in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million")):
        if value >= size:
            return f"{value / size:g} {word}"
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"
