"""Article dates as written in Korean and English news -> ISO 8601.

Front matter, JSONL records and web pages write a publication date in many
ways ("2025-08-04", "2025.08.04 10:30", "2025. 8. 4.", "2025년 8월 4일 오후
3:05", "Aug 4, 2025", "4 August 2025", "Mon, 04 Aug 2025 10:00:00 +0900").
Date filters compare ISO dates, so :func:`iso_date` rewrites the ones it
recognises and returns "" for the rest (the caller keeps the original text).
Nothing is guessed: a value without a year, or an impossible date, is not
recognised.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

_MONTHS = {
    m: i
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
         ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
         ("nov", "november"), ("dec", "december")],
        start=1,
    )
    for m in names
}  # fmt: skip
_TIME = r"(?:[ T,]+(?P<ampm>오전|오후)?\s*(?P<h>\d{1,2})(?::|시\s*)(?P<mi>\d{2})(?::\d{2})?(?:분)?)?"
_NUMERIC = re.compile(r"(?P<y>\d{4})\s*[-./]\s*(?P<m>\d{1,2})\s*[-./]\s*(?P<d>\d{1,2})\.?" + _TIME + r"\s*$")
_KOREAN = re.compile(
    r"(?P<y>\d{4})\s*년\s*(?P<m>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일?(?:\s*\([^)]*\))?" + _TIME + r"\s*$"
)
_COMPACT = re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_EN_MDY = re.compile(r"(?:[A-Za-z]+,?\s+)?(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})$")
_EN_DMY = re.compile(r"(?:[A-Za-z]+,?\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mon>[A-Za-z]{3,9})\.?,?\s+(?P<y>\d{4})$")


def iso_date(text: str) -> str:
    """``text`` as an ISO 8601 date ("2025-08-04", or "2025-08-04T15:05" with a time), or ""."""
    s = " ".join(text.split())
    if not s:
        return ""
    if re.match(r"\d{4}-\d{2}-\d{2}", s):  # already ISO: "2025-08-04", "2025-08-04T10:00:00+09:00", ...
        try:
            dt.datetime.fromisoformat(s)
            return s
        except ValueError:
            pass
    for rx in (_NUMERIC, _KOREAN, _COMPACT):
        m = rx.match(s)
        if m:
            return _build(m.group("y"), m.group("m"), m.group("d"), m.groupdict())
    for rx in (_EN_MDY, _EN_DMY):
        m = rx.match(s)
        month = _MONTHS.get(m.group("mon").lower()) if m else None
        if m and month:
            return _build(m.group("y"), str(month), m.group("d"), {})
    try:
        return email.utils.parsedate_to_datetime(s).isoformat()
    except (TypeError, ValueError, IndexError):
        return ""


def filter_day(text: str) -> str:
    """A date-filter bound: a real calendar day written YYYY-MM-DD (ValueError naming the fix)."""
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write YYYY-MM-DD, e.g. 2025-08-04") from None


def check_range(date_from: str, date_to: str) -> None:
    """ValueError when both filter bounds are given and ``date_from`` is after ``date_to``."""
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"from {date_from} is after to {date_to}: no article can match; swap them "
                         "/ 시작 날짜(from)가 끝 날짜(to)보다 늦습니다")


def _build(year: str, month: str, day: str, parts: dict[str, str | None]) -> str:
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError:
        return ""
    if not parts.get("h"):
        return date.isoformat()
    hour, minute = int(parts["h"] or 0), int(parts["mi"] or 0)
    if parts.get("ampm") == "오후" and hour < 12:
        hour += 12
    elif parts.get("ampm") == "오전" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return date.isoformat()
    return f"{date.isoformat()}T{hour:02d}:{minute:02d}"
