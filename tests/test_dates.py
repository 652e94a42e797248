"""rag.ingest.dates: publication dates as Korean and English news write them -> ISO 8601."""

from __future__ import annotations

import pytest

from rag.ingest.dates import iso_date


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("2025-08-04", "2025-08-04"),
        ("2025-08-04T10:00:00+09:00", "2025-08-04T10:00:00+09:00"),
        ("2025.08.04", "2025-08-04"),
        ("2025.08.04 10:30", "2025-08-04T10:30"),
        ("2025. 8. 4.", "2025-08-04"),
        ("2025/8/4", "2025-08-04"),
        ("20250804", "2025-08-04"),
        ("2025년 8월 4일", "2025-08-04"),
        ("2025년 8월 4일 오후 3:05", "2025-08-04T15:05"),
        ("2025년 8월 4일(월) 오전 12:10", "2025-08-04T00:10"),
        ("Aug 4, 2025", "2025-08-04"),
        ("Sept. 4, 2025", "2025-09-04"),
        ("Monday, August 4th, 2025", "2025-08-04"),
        ("4 August 2025", "2025-08-04"),
        ("Mon, 04 Aug 2025 10:00:00 +0900", "2025-08-04T10:00:00+09:00"),
    ],
)
def test_written_dates_become_iso(written: str, iso: str) -> None:
    assert iso_date(written) == iso


@pytest.mark.parametrize("text", ["", "last Tuesday", "8월 4일", "2025", "2025-02-30", "2025.13.01", "Foo 4, 2025"])
def test_no_date_is_guessed(text: str) -> None:
    assert iso_date(text) == ""
