"""rag.ingest.chunking: exact offsets, stable ids, token budget, overlap, paragraph preference."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rag.ingest.chunking import approx_tokens, chunk
from rag.ingest.corpus import load_corpus
from rag.records import Chunk, Document
from rag.text import split_sentences

ROOT = Path(__file__).resolve().parents[1]

KO_PARA = (
    "정부는 독자 AI 파운데이션 모델 사업의 최종 5개팀 선발을 완료했다고 밝혔다. "
    "과기정통부 관계자는 “탈락한 팀도 다른 사업으로 지원하겠다”고 말했다. "
    "업계는 이번 결정이 국내 AI 생태계에 큰 영향을 줄 것으로 보고 있다."
)
EN_PARA = (
    "The central bank raised interest rates by 0.25 points on Wednesday, citing inflation. "
    "Mr. Powell said the U.S. economy remained resilient despite higher borrowing costs. "
    "Analysts at J. P. Morgan expect one more increase before the end of the year."
)


def doc(text: str, lang: str = "", doc_id: str = "d") -> Document:
    return Document(doc_id=doc_id, text=text, lang=lang)


def check(d: Document, chunks: list[Chunk], budget: int = 160) -> None:
    """The invariants every chunking must keep."""
    for i, c in enumerate(chunks):
        assert d.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert c.chunk_id == f"{d.doc_id}#{i:04d}" and c.doc_id == d.doc_id
        assert approx_tokens(c.text) <= budget
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start and a.end < b.end, "every passage adds new text"
    if chunks:  # all text is covered: no sentence falls between passages
        assert chunks[0].start == split_sentences(d.text, d.lang or None)[0][0]
        assert chunks[-1].end == len(d.text.rstrip())
        for a, b in itertools.pairwise(chunks):
            assert b.start <= a.end or not d.text[a.end : b.start].strip()


@pytest.mark.parametrize(
    "text",
    [
        "\n\n".join([KO_PARA] * 8),
        "\n\n".join([EN_PARA] * 8),
        "\n\n".join([KO_PARA, EN_PARA] * 4),
        "😀 이모지가 들어간 문장이다 🎉. 𝐀𝐁𝐂 글자도 있다. 👨‍👩‍👧 가족 이모지 뒤의 문장.\n\n" * 10,
        "한 문장.",
        "x",
    ],
    ids=["korean", "english", "mixed", "emoji", "one-sentence", "one-char"],
)
def test_offsets_round_trip(text: str) -> None:
    d = doc(text)
    chunks = chunk(d)
    check(d, chunks)
    assert chunk(d) == chunks, "deterministic"


def test_empty_document_has_no_chunks() -> None:
    assert chunk(doc("")) == []
    assert chunk(doc("  \n\n  ")) == []


def test_crlf_text_round_trips_raw_and_loaded(tmp_path: Path) -> None:
    raw = "\r\n\r\n".join([EN_PARA] * 6) + "\r\n"
    d = doc(raw, "en")
    chunks = chunk(d)
    check(d, chunks)
    assert all("\r" not in c.text[-1:] for c in chunks)
    (tmp_path / "crlf.txt").write_bytes(raw.encode())
    loaded = load_corpus([tmp_path]).documents[0]
    assert "\r" not in loaded.text
    check(loaded, chunk(loaded))


def test_very_long_sentence_is_cut_at_whitespace_under_budget() -> None:
    long_en = " ".join(f"word{i}" for i in range(2000)) + "."
    long_ko = "가나다라마바사 " * 600 + "끝이다."
    for text in (long_en, long_ko, "x" * 5000):
        d = doc(text)
        chunks = chunk(d)
        check(d, chunks)
        assert len(chunks) > 5
    for c in chunk(doc(long_en)):
        assert not c.text.startswith(" ") and " " not in (c.text[0], c.text[-1])


def test_overlap_repeats_the_last_sentence() -> None:
    d = doc(" ".join([EN_PARA] * 10), "en")  # one paragraph: no paragraph ends to prefer
    chunks = chunk(d, max_tokens=80, overlap=1)
    assert len(chunks) > 3
    spans = split_sentences(d.text, "en")
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end, "neighbours share text"
        last = next(s for s in spans if s[1] == a.end)
        assert b.start == last[0], "the shared text is exactly the previous passage's last sentence"
    no_overlap = chunk(d, max_tokens=80, overlap=0)
    for a, b in itertools.pairwise(no_overlap):
        assert b.start > a.end


def test_prefers_paragraph_ends_once_half_full() -> None:
    d = doc("\n\n".join([KO_PARA] * 6), "ko")
    chunks = chunk(d, max_tokens=160, overlap=0)
    para_ends = {i + len(KO_PARA) for i in range(0, len(d.text), len(KO_PARA) + 2)}
    assert all(c.end in para_ends for c in chunks)
    assert all(approx_tokens(c.text) >= 80 for c in chunks[:-1])


def test_custom_counter_and_ids_stable_across_runs() -> None:
    d = doc("\n\n".join([KO_PARA, EN_PARA] * 5), doc_id="news/abc")
    words = lambda s: len(s.split()) + 2  # noqa: E731 - a whitespace tokenizer with 2 special tokens
    a, b = chunk(d, max_tokens=40, count_tokens=words), chunk(d, max_tokens=40, count_tokens=words)
    assert a == b and a[0].chunk_id == "news/abc#0000"
    assert all(words(c.text) <= 40 for c in a)
    assert all(d.text[c.start : c.end] == c.text for c in a)
    with pytest.raises(ValueError):
        chunk(d, max_tokens=0)


def test_chunk_lang_comes_from_document_or_detection() -> None:
    assert {c.lang for c in chunk(doc(KO_PARA))} == {"ko"}
    assert {c.lang for c in chunk(doc(EN_PARA))} == {"en"}
    assert {c.lang for c in chunk(doc(EN_PARA, lang="ko"))} == {"ko"}


def test_shipped_seed_article_chunks() -> None:
    (d,) = load_corpus([ROOT / "corpus"]).documents
    chunks = chunk(d)
    check(d, chunks)
    assert 10 < len(chunks) < 60
    assert [c.chunk_id for c in chunks] == [c.chunk_id for c in chunk(d)]
    assert any("경찰청" in c.text for c in chunks)


def test_metadata_header_is_its_own_passage() -> None:
    from rag.ingest.corpus import metadata_header

    meta = {"title": "반도체 수출", "outlet": "테스트일보", "author": "홍길동", "published": "", "lang": "ko"}
    header = metadata_header(meta)
    assert header == "반도체 수출\n매체: 테스트일보 | 기자: 홍길동"
    text = header + "\n\n" + "삼성전자의 수출이 늘었다. 메모리 가격이 올랐다."
    doc = Document(doc_id="h", text=text, lang="ko", body_start=len(header) + 2)
    chunks = chunk(doc, max_tokens=200)
    assert chunks[0].text == header and chunks[0].chunk_id == "h#0000"
    assert chunks[1].text.startswith("삼성전자의") and all(doc.text[c.start : c.end] == c.text for c in chunks)
    assert metadata_header({"title": "Only a title", "lang": "en"}) == ""


class _Metered:
    """A token counter that records how many characters it was asked to count."""

    def __init__(self) -> None:
        self.chars = 0

    def __call__(self, text: str) -> int:
        self.chars += len(text)
        return approx_tokens(text)


@pytest.mark.parametrize(
    "text",
    [
        "abcdefghij" * 100_000,  # 1 MB without whitespace
        "가나다라마바사아자차" * 34_000,  # 1 MB of Hangul (UTF-8) without whitespace
        ("word " * 200_000).strip(),  # 1 MB on one line
        ("abc" * 400 + " ") * 800,  # many 1200-character runs
    ],
    ids=["latin", "hangul", "one-line", "runs"],
)
def test_chunking_huge_unbroken_text_is_linear(text: str) -> None:
    # super-linear before: each cut searched the whole remaining text (40k characters took 7.7 s)
    meter = _Metered()
    chunks = chunk(doc(text), max_tokens=256, overlap=1, count_tokens=meter)
    assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
    assert all(approx_tokens(c.text) <= 256 for c in chunks)
    assert "".join(text[c.start : c.end] for c in chunks).replace(" ", "") == text.replace(" ", "")
    assert meter.chars <= 8 * len(text), f"counted {meter.chars / len(text):.1f} characters per character"
