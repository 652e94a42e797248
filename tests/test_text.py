"""rag.text: normalisation, language detection, sentence spans, lexical tokens."""

from __future__ import annotations

import pytest

from rag.text import detect_lang, hangul_ratio, normalize, split_sentences, tokens, tokens_batch


def sentences(text: str, lang: str | None = None) -> list[str]:
    spans = split_sentences(text, lang)
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip(), "spans are trimmed"
    assert spans == sorted(spans)
    return [text[s:e] for s, e in spans]


# ---------------------------------------------------------------- normalize


def test_normalize_nfc_newlines_invisibles_and_trailing_spaces() -> None:
    decomposed = "\u1112\u1161\u11ab\u1100\u116e\u11a8"  # 한국 as conjoining jamo
    raw = "\ufeff" + decomposed + "\u200b어  \r\nline two\t \r\n\r\n\r\n\r\npara\u00a0t\u00adwo\r"
    assert normalize(raw) == "한국어\nline two\n\npara two"


def test_normalize_keeps_paragraphs_and_is_idempotent() -> None:
    text = "첫 문단이다.\n\n둘째 문단이다.\n  들여쓴 줄"
    assert normalize(text) == text
    assert normalize(normalize("a \r\n\r\n\r\nb")) == normalize("a \r\n\r\n\r\nb") == "a\n\nb"
    assert normalize("") == ""
    assert normalize("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # ZWJ emoji sequences survive


# ---------------------------------------------------------------- language


def test_detect_lang_and_hangul_ratio() -> None:
    assert detect_lang("정부는 AI 사업을 발표했다.") == "ko"
    assert detect_lang("The government announced the AI programme.") == "en"
    assert detect_lang("") == ""
    assert detect_lang("2024-07-01 12:00") == ""
    assert detect_lang("Samsung, LG, SK and KT joined 컨소시엄") == "en"  # mostly Latin letters
    assert hangul_ratio("") == 0.0
    assert hangul_ratio("가a") == 0.5
    assert hangul_ratio("한국어") == 1.0


# ---------------------------------------------------------------- sentences


def test_korean_quotes_stay_inside_their_sentence() -> None:
    text = (
        "정부는 “탈락했지만 계속하겠다.”고 밝혔다. 그는 “좋다. 정말 좋다”라며 웃었다. "
        "모티프는 올해 출범했다. ‘모두를 위한 AI’를 비전으로 내세웠다. KT는 믿:음 2.0을 공개했다."
    )
    assert sentences(text) == [
        "정부는 “탈락했지만 계속하겠다.”고 밝혔다.",
        "그는 “좋다. 정말 좋다”라며 웃었다.",
        "모티프는 올해 출범했다.",
        "‘모두를 위한 AI’를 비전으로 내세웠다.",
        "KT는 믿:음 2.0을 공개했다.",
    ]


def test_english_abbreviations_decimals_and_initials() -> None:
    text = (
        "Mr. Smith of J. P. Morgan Inc. said growth was 3.5 percent. He moved to the U.S. The "
        "economy, e.g. exports, grew in the U.S. economy too! Did it? Yes... it did. "
        "She said “Go home.” Then left."
    )
    assert sentences(text) == [
        "Mr. Smith of J. P. Morgan Inc. said growth was 3.5 percent.",
        "He moved to the U.S.",
        "The economy, e.g. exports, grew in the U.S. economy too!",
        "Did it?",
        "Yes... it did.",
        "She said “Go home.”",
        "Then left.",
    ]


def test_paragraph_breaks_lists_and_headings_end_sentences() -> None:
    text = (
        "# 제목\n첫 문단 끝 없음\n\n둘째 문단이다\n"
        "- item one\n- item two. Next one.\n\n1. Intro line\n2. Methods"
    )
    assert sentences(text) == [
        "# 제목",
        "첫 문단 끝 없음",
        "둘째 문단이다",
        "- item one",
        "- item two.",
        "Next one.",
        "1. Intro line",
        "2. Methods",
    ]
    english = "A first paragraph without a stop\n\nA second one"
    assert sentences(english) == ["A first paragraph without a stop", "A second one"]


def test_offsets_survive_emoji_and_crlf() -> None:
    text = "😀😀 정부는 “좋다”고 밝혔다. 😀 그는 웃었다 😀.\r\n\r\n𝐀𝐁 Next paragraph here. Done 🎉."
    got = sentences(text)
    assert got[0] == "😀😀 정부는 “좋다”고 밝혔다."
    assert got[-2:] == ["𝐀𝐁 Next paragraph here.", "Done 🎉."]
    assert all("\r" not in s for s in got)


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_no_sentences_in_blank_text(text: str) -> None:
    assert split_sentences(text) == []


def test_lang_hint_forces_kiwi_for_mixed_blocks() -> None:
    text = "OpenAI released GPT-5 today. 오픈AI가 발표했다."
    assert sentences(text, "ko") == ["OpenAI released GPT-5 today.", "오픈AI가 발표했다."]


# ---------------------------------------------------------------- tokens


def test_korean_tokens_are_content_morphemes() -> None:
    toks = tokens("KT는 자체 AI 모델을 소개한다. 아름다운 漢字를 만들었다.")
    assert {"kt", "자체", "ai", "모델", "소개", "아름답다", "漢字", "만들다"} <= set(toks)
    assert not {"는", "을", "한다", "다", "."} & set(toks)


def test_english_tokens_lowercase_without_stopwords() -> None:
    assert tokens("The Models of the companies were growing 3.5% in the U.S.") == [
        "model",
        "company",
        "growing",
        "3.5",
        "us",
    ]
    assert tokens("") == []


def test_latin_words_match_across_languages() -> None:
    """An English query term and the same word inside a Korean article tokenise alike."""
    ko = tokens("삼성전자는 GPT-4o와 HBM3E 메모리, 1,000억 원 투자를 발표했다.")
    en = tokens("Samsung GPT-4o HBM3E memory 1,000")
    assert {"gpt", "4o", "hbm3e", "1,000"} <= set(ko) & set(en)


def test_tokens_batch_matches_single_calls() -> None:
    texts = ["정부는 AI 사업을 발표했다.", "The government announced it.", "", "혼합 mixed 텍스트"]
    assert tokens_batch(texts) == [tokens(t) for t in texts]
    assert tokens_batch([]) == []
