"""The chat page's pure parts: stored conversations, filter fields and chips, the coverage line (no browser)."""

from __future__ import annotations

import pytest

from rag.records import Answer, Citation, Sentence
from rag.serve import chat_store

pytest.importorskip("gradio")

from rag.serve.chat_ui import conv_from_answers, coverage, parse_filters, render_chips


def answer(n: int = 1) -> Answer:
    c = Citation(n=1, doc_id="d1", chunk_id="d1#0000", title="제목", url="https://news.example/a", quote="경찰청이다.",
                 start=0, end=6, outlet="바이라인네트워크", published="2025-08-05", passage="경찰청이다. 끝.")
    return Answer(question=f"질문 {n}?", lang="ko", answer="경찰청이다. [1]", abstained=False, citations=(c,),
                  sentences=(Sentence("경찰청이다. [1]", (1,), True),), id=f"a{n}", mode="extractive")


def test_a_stored_conversation_comes_back_whole() -> None:
    saved = chat_store.dump([answer(1), answer(2)])
    back = chat_store.load(saved)
    assert back == [answer(1), answer(2)]
    conv = conv_from_answers(back, "en")
    assert len(conv["messages"]) == 4 and conv["msg_answer"] == {1: 0, 3: 1}
    assert "Sources" in conv["messages"][1]["content"] and "질문 2?" in conv["messages"][2]["content"]
    assert [t.role for t in conv["turns"]] == ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize("bad", [None, "x", {"v": 99, "answers": []}, {"v": 1, "answers": "no"}])
def test_nothing_or_a_foreign_value_is_an_empty_conversation(bad: object) -> None:
    assert chat_store.load(bad) == []


def test_a_damaged_answer_does_not_lose_the_others() -> None:
    saved = chat_store.dump([answer(1), answer(2)])
    del saved["answers"][0]["question"]
    assert chat_store.load(saved) == [answer(2)]
    assert len(chat_store.dump([answer(i) for i in range(80)])["answers"]) == chat_store.MAX_TURNS


def test_filters_from_the_page() -> None:
    f, err = parse_filters(" 바이라인네트워크 ", "2025-01-01", "", "ko")
    assert not err and f is not None and (f.outlet, f.date_from, f.date_to) == ("바이라인네트워크", "2025-01-01", "")
    assert parse_filters("", "", "", "en") == (None, "")
    _, err = parse_filters("", "2025-13-01", "", "ko")
    assert "2025-13-01" in err and "날짜" in err
    _, err = parse_filters("", "2025-05-01", "2025-01-01", "en")
    assert "after" in err


def test_chips_name_each_filter_and_can_be_removed() -> None:
    html = render_chips("<b>Evil</b>", "2025-01-01", "", "en")
    assert html.count('class="rag-chip"') == 2 and "&lt;b&gt;Evil&lt;/b&gt;" in html and "<b>" not in html
    assert "rag-chip-outlet" in html and "rag-chip-from" in html and "rag-chip-to" not in html
    assert 'aria-label="Remove the Outlet: &lt;b&gt;Evil&lt;/b&gt; filter"' in html
    assert render_chips("", "", "", "ko") == ""
    assert "시작일: 2025-01-01" in render_chips("", "2025-01-01", "", "ko")


def test_coverage_line() -> None:
    info = {"index": {"documents": 12, "outlets": ["A", "B"], "published": {"first": "2024-01-02",
                                                                           "last": "2025-08-05"}}}
    assert coverage(info, "en") == "12 articles · 2 outlets · 2024-01-02 to 2025-08-05"
    assert coverage(info, "ko") == "기사 12건 · 언론사 2곳 · 2024-01-02 ~ 2025-08-05"
    info["index"]["published"] = None
    assert coverage(info, "en") == "12 articles · 2 outlets"
    assert coverage({"index": None}, "en") == ""
