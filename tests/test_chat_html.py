"""The chat page's HTML fragments: escaping, links, citation buttons, highlighting (no browser)."""

from __future__ import annotations

import pytest

from rag.records import Answer, Citation, Sentence
from rag.serve.chat_html import (
    pick_lang,
    render_answer,
    render_panel,
    render_problem,
    render_question,
    render_streaming,
    safe_url,
)

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'
DOC = "첫 문장이다. KT 컨소시엄에는 경찰청이 참여했다. 마지막 문장."


def cite(n: int = 1, **kw: object) -> Citation:
    quote = "KT 컨소시엄에는 경찰청이 참여했다."
    start = DOC.index(quote)
    base = dict(n=n, doc_id="d1", chunk_id="d1#0000", title="제목", url="https://news.example/a?b=1&c=2",
                quote=quote, start=start, end=start + len(quote), outlet="바이라인네트워크", author="최가람",
                published="2025-08-05T09:00:00", passage=DOC, passage_start=0)
    base.update(kw)
    return Citation(**base)  # type: ignore[arg-type]


def test_pick_lang_follows_browser() -> None:
    assert pick_lang("ko-KR,en-US") == "ko"
    assert pick_lang("en-GB,ko;q=0.8") == "en"
    assert pick_lang("fr-FR,ko") == "ko"
    assert pick_lang("") == "en" and pick_lang("de") == "en"


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x",
                                 "vbscript:x", "//evil.example/x", "http:///x", "https://a.example/\nx", ""])
def test_only_http_urls_are_links(url: str) -> None:
    assert safe_url(url) is None
    html = render_panel(cite(url=url), "en")
    assert "<a " not in html


def test_http_urls_are_escaped_links() -> None:
    assert safe_url("https://news.example/a") == "https://news.example/a"
    html = render_panel(cite(url='https://x.example/"><script>'), "en")
    assert 'href="https://x.example/&quot;&gt;&lt;script&gt;"' in html and "<script>" not in html
    assert 'rel="noopener noreferrer nofollow"' in render_panel(cite(), "ko")


def test_everything_untrusted_is_escaped() -> None:
    c = cite(title=EVIL, outlet=EVIL, author=EVIL, quote="x", passage=EVIL + " x", start=len(EVIL) + 1,
             end=len(EVIL) + 2, passage_start=0)
    a = Answer(question=EVIL, lang="en", answer=f"{EVIL} [1] [2]", abstained=False, citations=(c,),
               notice=EVIL)
    for html in (render_answer(a, 0, "en"), render_panel(c, "en"), render_question(EVIL),
                 render_streaming(EVIL, "en"), render_problem(EVIL, "ko")):
        assert "<script" not in html and "<img" not in html and "onerror=\"" not in html
        assert "&lt;script&gt;" in html
    assert "\n" not in render_answer(a, 0, "en")  # one HTML block for the Chatbot's markdown


def test_citation_markers_become_buttons() -> None:
    a = Answer(question="q", lang="ko", answer="경찰청이다. [1] 또 [2]", abstained=False,
               citations=(cite(1),))
    html = render_answer(a, 3, "ko")
    assert html.count('class="rag-cite rag-t-3 rag-n-1"') == 1
    assert "[2]" in html and "rag-n-2" not in html  # an unknown number stays text
    assert "rag-answer" in html and "rag-abstain" not in html and "출처" in html and "복사" in html


def test_abstention_and_unsupported_sentences_look_different() -> None:
    a = Answer(question="q", lang="ko", answer="기사에서 찾지 못했습니다.", abstained=True)
    assert "rag-abstain" in render_answer(a, 0, "ko") and "rag-badge" in render_answer(a, 0, "ko")
    text = "맞는 문장 [1] 틀린 문장."
    b = Answer(question="q", lang="ko", answer=text, abstained=False, citations=(cite(1),), mode="llm",
               sentences=(Sentence("맞는 문장 [1]", (1,), True), Sentence("틀린 문장.", (), False)))
    html = render_answer(b, 0, "en")
    assert html.count("rag-unsupported") == 1 and "Not supported" in html and "rag-legend" in html
    assert html.index("rag-unsupported") > html.index("rag-cite")


def test_panel_highlights_the_cited_sentence() -> None:
    html = render_panel(cite(), "ko", nonce=7)
    assert "<mark>KT 컨소시엄에는 경찰청이 참여했다.</mark>" in html
    assert "첫 문장이다. <mark>" in html and "바이라인네트워크" in html and "2025-08-05" in html
    assert "is-open" in html and "rag-nonce-7" in html and "언론사" in html
    # offsets that do not match the passage: the quote is still found and marked
    moved = render_panel(cite(passage_start=3), "en")
    assert "<mark>KT 컨소시엄에는 경찰청이 참여했다.</mark>" in moved
    assert "is-open" not in render_panel(None, "en")


def test_panel_shows_only_known_metadata_and_hides_ids() -> None:
    bare = render_panel(cite(url="", author="", published=""), "en")
    assert "—" not in bare and "Author" not in bare and "Link" not in bare
    assert "Outlet" in bare and "<dd>undated</dd>" in bare  # a missing date is said, never an empty row
    full = render_panel(cite(), "ko")
    for label in ("언론사", "날짜", "기자", "원문 기사 열기"):
        assert label in full
    assert 'href="https://news.example/a?b=1&amp;c=2"' in full and 'target="_blank"' in full
    # internal ids only inside a closed disclosure, after everything a reader needs
    assert full.index("<details") < full.index("d1#0000") and "<details open" not in full
    assert full.index("<details") > full.index("<mark>")


def test_panel_steps_between_citations() -> None:
    html = render_panel(cite(2), "en", turn=4, numbers=(1, 2, 3))
    assert "[2] of 3" in html and "rag-t-4 rag-n-2" in html  # the open [n] is named for the page
    assert 'class="rag-step rag-src rag-t-4 rag-n-1"' in html and 'class="rag-step rag-src rag-t-4 rag-n-3"' in html
    first = render_panel(cite(1), "ko", turn=0, numbers=(1, 2))
    assert "disabled" in first and "이전 출처" in first and 'rag-step rag-src rag-t-0 rag-n-2' in first
    assert "rag-step" not in render_panel(cite(1), "en", turn=0, numbers=(1,))  # nothing to step to
    assert 'tabindex="0"' in html  # the scrollable passage can be reached by keyboard


def test_labels_follow_the_page_language_not_the_question() -> None:
    a = Answer(question="KT?", lang="en", answer="The police joined [1].", abstained=False, citations=(cite(1),))
    ko = render_answer(a, 0, "ko")
    assert "출처" in ko and "복사" in ko and "도움됐어요" in ko and "Sources" not in ko and "Copy" not in ko
    assert 'lang="en"' in ko  # the answer text keeps the question's language
    refusal = Answer(question="Naver stock?", lang="en", answer="I could not find evidence for this in the "
                     "articles.", abstained=True)
    html = render_answer(refusal, 1, "ko")
    assert "기사에서 관련 근거를 찾지 못했습니다" in html and "I could not" not in html
    err = render_problem("잠시 후 다시 시도하세요", "ko", detail="ValueError: boom")
    assert "<details" in err and "기술 정보" in err and "boom" in err
    assert "rag-fb" not in err and "rag-fb" in ko  # thumbs under answers only


def test_copy_text_keeps_the_quotes_and_sources() -> None:
    a = Answer(question="q", lang="ko", answer="경찰청이다 [1].", abstained=False, citations=(cite(1),))
    html = render_answer(a, 0, "ko")
    lines = html.split('class="rag-copytext"')[1]
    assert "경찰청이다 [1]." in lines and "“KT 컨소시엄에는 경찰청이 참여했다.”" in lines
    assert "[1] 제목 (바이라인네트워크 · 2025-08-05) https://news.example/a?b=1&amp;c=2" in lines
