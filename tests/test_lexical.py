"""rag.store.lexical: BM25 over single terms and over adjacent term pairs; saving, loading, odd corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from rag.store.lexical import HASHED_FOLDER, PAIRS_FOLDER, Lexical, _bm25, term_pairs
from rag.text import tokens

PASSAGES = [
    "KT 컨소시엄에는 경찰청 등 공공 기관이 참여했다.",  # "공공 기관" side by side
    "기관 투자자들은 공공 부문보다 민간 기업을 선호했다.",  # the same two words, apart
    "The New York office of the bank opened in spring.",
    "A new office opened in York in the spring.",
]


def test_pairs_follow_token_order() -> None:
    assert term_pairs(["공공", "기관", "참여"]) == ["공공 기관", "기관 참여"]
    assert term_pairs(["one"]) == [] and term_pairs([]) == []


def test_a_phrase_outscores_the_same_words_apart() -> None:
    lex = Lexical.build(PASSAGES)
    for question, phrase_row, apart_row in (("공공 기관은 어디인가?", 0, 1), ("New York office", 2, 3)):
        words = tokens(question)
        single = lex.term_scores(words)
        pairs = lex.pair_scores(words)
        assert single[phrase_row] > 0 and single[apart_row] > 0  # both hold every word
        assert pairs[phrase_row] > 0 and pairs[apart_row] == 0  # only one holds them side by side
    assert lex.pair_scores(tokens("기관 공공")).sum() == 0  # order matters: "기관 공공" is no phrase here


def test_save_and_load_keep_pairs(tmp_path: Path) -> None:
    lex = Lexical.build(PASSAGES)
    lex.save(tmp_path / "bm25")
    back = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    words = tokens("New York office")
    assert np.allclose(back.term_scores(words), lex.term_scores(words))
    assert np.allclose(back.pair_scores(words), lex.pair_scores(words))
    assert back.vocabulary() == lex.vocabulary()


def test_index_from_before_pairs_still_searches(tmp_path: Path) -> None:
    Lexical.build(PASSAGES).save(tmp_path / "bm25")
    shutil.rmtree(tmp_path / "bm25" / HASHED_FOLDER)
    old = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    words = tokens("New York office")
    assert old.term_scores(words)[2] > 0
    assert not old.pair_scores(words).any()


def test_passages_without_terms_index(tmp_path: Path) -> None:
    for i, texts in enumerate(([], ["!!!"], ["…", "— ·"], ["하나", "?"])):  # bm25s alone cannot index no terms
        Lexical.build(texts).save(tmp_path / f"bm25-{i}")
        back = Lexical.load(tmp_path / f"bm25-{i}", len(texts))
        assert back.term_scores(["하나"]).shape == (len(texts),)
        assert back.pair_scores(["하나", "둘"]).shape == (len(texts),)
        assert "\x00" not in back.vocabulary()


def test_index_with_string_pairs_still_scores_phrases(tmp_path: Path) -> None:
    """An index written before pairs were hashed (a bm25s index over "a b" strings) is read as it is."""
    lex = Lexical.build(PASSAGES)
    lex.save(tmp_path / "bm25")
    shutil.rmtree(tmp_path / "bm25" / HASHED_FOLDER)
    from rag.text import tokens_batch

    _bm25([term_pairs(t) for t in tokens_batch(PASSAGES)]).save(str(tmp_path / "bm25" / PAIRS_FOLDER))
    old = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    words = tokens("New York office")
    assert old.pair_scores(words)[2] > 0 and old.pair_scores(words)[3] == 0
    assert np.argmax(old.pair_scores(words)) == np.argmax(lex.pair_scores(words))


def test_hashed_pairs_keep_no_vocabulary_of_pairs(tmp_path: Path) -> None:
    """Pairs are hashed into buckets: the saved pair index has no string vocabulary to load."""
    Lexical.build(PASSAGES).save(tmp_path / "bm25")
    assert (tmp_path / "bm25" / HASHED_FOLDER / "vocab.index.json").read_text().strip() == "{}"
    back = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    assert back.pair_scores(tokens("공공 기관은 어디인가?"))[0] > 0
    assert not back.pair_scores(["없는", "말"]).any()
