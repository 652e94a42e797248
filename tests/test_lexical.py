"""rag.store.lexical: BM25 over single terms and over adjacent term pairs; saving, loading, odd corpora."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rag.store.lexical import KEYED_FOLDER, PAIRS_FOLDER, Lexical, term_pairs
from rag.text import tokens, tokens_batch

PASSAGES = [
    "KT 컨소시엄에는 경찰청 등 공공 기관이 참여했다.",  # "공공 기관" side by side
    "기관 투자자들은 공공 부문보다 민간 기업을 선호했다.",  # the same two words, apart
    "The New York office of the bank opened in spring.",
    "A new office opened in York in the spring.",
]


def bm25s_index(corpus_tokens: list[list[str]]) -> Any:
    """What bm25s itself builds (how indexes were written before rag computed the matrix)."""
    import bm25s

    bm25 = bm25s.BM25()
    bm25.index(corpus_tokens, show_progress=False)
    return bm25


def test_scores_equal_bm25s_own() -> None:
    """The numpy-built BM25 matrix scores every passage as bm25s's own build does."""
    from rag.text import tokens_batch

    texts = [*PASSAGES, "공공 기관 공공 기관 공공", "York York York new", ""]
    corpus = tokens_batch(texts)
    ours, theirs = Lexical.from_tokens(corpus), bm25s_index(corpus)
    for q in ("공공 기관은 어디인가?", "New York office", "spring bank", "없는 말"):
        words = [w for w in tokens(q) if w in theirs.vocab_dict]
        want = np.asarray(theirs.get_scores(words), np.float32)[: len(texts)] if words else np.zeros(len(texts))
        np.testing.assert_allclose(ours.term_scores(tokens(q)), want, rtol=1e-5, atol=1e-6)


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
    shutil.rmtree(tmp_path / "bm25" / KEYED_FOLDER)
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
    """An index written before pairs were keyed (a bm25s index over "a b" strings) is read as it is."""
    lex = Lexical.build(PASSAGES)
    lex.save(tmp_path / "bm25")
    shutil.rmtree(tmp_path / "bm25" / KEYED_FOLDER)
    from rag.text import tokens_batch

    bm25s_index([term_pairs(t) for t in tokens_batch(PASSAGES)]).save(str(tmp_path / "bm25" / PAIRS_FOLDER))
    old = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    words = tokens("New York office")
    assert old.pair_scores(words)[2] > 0 and old.pair_scores(words)[3] == 0
    assert np.argmax(old.pair_scores(words)) == np.argmax(lex.pair_scores(words))


def test_keyed_pairs_keep_no_vocabulary_of_pairs(tmp_path: Path) -> None:
    """Pairs are keyed by their terms' ids: the saved pair index has no string vocabulary to load,
    and a pair is found only within a passage, not across the end of one and the start of the next."""
    Lexical.build(PASSAGES).save(tmp_path / "bm25")
    assert (tmp_path / "bm25" / KEYED_FOLDER / "vocab.index.json").read_text().strip() == "{}"
    back = Lexical.load(tmp_path / "bm25", len(PASSAGES))
    assert back.pair_scores(tokens("공공 기관은 어디인가?"))[0] > 0
    assert not back.pair_scores(["없는", "말"]).any()
    words = tokens_batch(PASSAGES)
    assert not back.pair_scores([words[0][-1], words[1][0]]).any()
    odd = Lexical.from_tokens([["a", "b"], [], ["b", "c"], [], []])
    assert odd.pair_scores(["b", "c"])[2] > 0 and not odd.pair_scores(["b", "c"])[[0, 1, 3, 4]].any()
    assert not odd.pair_scores(["b", "b"]).any() and odd.pair_scores(["a", "b"])[0] > 0


def test_build_in_blocks_equals_one_pass(monkeypatch: Any) -> None:
    """Passages are cut into terms a block at a time; the index is the one of all terms at once."""
    import rag.store.lexical as lexical

    texts = [*PASSAGES, "", "!!!", "서울 지하철 요금이 오른다", "Seoul subway fares rise again"]
    whole = Lexical.from_tokens(tokens_batch(texts))
    monkeypatch.setattr(lexical, "BUILD_BLOCK", 3)
    blocks = Lexical.build(texts)
    assert blocks.size == whole.size == len(texts) and blocks.vocabulary() == whole.vocabulary()
    for q in ("서울 지하철 요금", "subway fares", "반도체 수출", "nothing here"):
        np.testing.assert_array_equal(blocks.term_scores(tokens(q)), whole.term_scores(tokens(q)))
        np.testing.assert_array_equal(blocks.pair_scores(tokens(q)), whole.pair_scores(tokens(q)))
    assert Lexical.build(["", "!!!"]).size == Lexical.from_tokens([[], []]).size
