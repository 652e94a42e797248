"""The shipped table of common terms' vectors: read back faithfully, keyed to its model, used by a
first index so that only rarer terms go through the model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.store import termtable
from rag.store.crosslex import plan, translatable
from rag.store.index import build_index, term_cache
from rag.text import tokens


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_table_reads_back_close_to_what_was_written(tmp_path: Path) -> None:
    vecs = _unit(50, 384)
    terms = [f"단어{i}" for i in range(50)]
    termtable.write("k1", terms, vecs, tmp_path)
    got = termtable.lookup("k1", ["단어3", "없는말", "단어41"], 384, tmp_path)
    assert set(got) == {"단어3", "단어41"}
    assert float(got["단어3"] @ vecs[3]) > 0.999 and float(got["단어41"] @ vecs[41]) > 0.999
    assert termtable.lookup("another-model", ["단어3"], 384, tmp_path) == {}  # keyed to its model
    assert termtable.lookup("k1", ["단어3"], 768, tmp_path) == {}  # another size: not used


def test_a_damaged_table_is_ignored(tmp_path: Path) -> None:
    termtable.write("k2", ["a", "b"], _unit(2, 8), tmp_path)
    names, _, _ = termtable.files_for("k2", tmp_path)
    names.write_text(json.dumps(["a", "b", "c"]), encoding="utf-8")  # three names, two rows
    termtable._table.cache_clear()
    assert termtable.lookup("k2", ["a"], 8, tmp_path) == {}
    names.write_text("{not json", encoding="utf-8")
    termtable._table.cache_clear()
    assert termtable.lookup("k2", ["a"], 8, tmp_path) == {}


def test_shipped_table_holds_the_bundled_models_vectors(settings: Settings, embedder: Any) -> None:
    key = term_cache(settings, embedder)
    assert key is not None
    sample = ["평가", "정부", "컨소시엄", "government", "model", "선정"]
    got = termtable.lookup(key.name, sample, embedder.dim)
    assert len(got) >= 5, f"the shipped table (rag/data/terms-{key.name}.*) is missing or stale: remake it"
    fresh = embedder.encode_queries(list(got))
    for (term, vec), ref in zip(got.items(), fresh, strict=True):
        assert float(vec @ ref) > 0.995, term


def test_first_index_embeds_only_terms_the_table_lacks(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "정부는 인공지능 모델 평가 결과를 발표했다. 선정된 기업은 다음 단계에 참여한다. 퀵솔브랩스는 탈락했다."
    (corpus / "a.md").write_text(f"---\ntitle: 평가 결과\n---\n{text}", encoding="utf-8")
    vocab = {t for t in tokens("평가 결과 " + text) if translatable(t)}
    cache = _fresh(tmp_path / "c1", settings)
    folder = term_cache(replace(settings, cache_dir=str(cache)), embedder)
    assert folder is not None
    planned = len(plan(sorted(vocab), None, embedder.dim, folder).todo)  # the progress bar's share of terms
    with_table = build_index(replace(settings, cache_dir=str(cache)), [corpus],
                             tmp_path / "i1", progress=False, embedder=embedder)
    without = build_index(replace(settings, cache_dir=str(_fresh(tmp_path / "c2", settings)), term_table=False),
                          [corpus], tmp_path / "i2", progress=False, embedder=embedder)
    assert without.terms_embedded == len(vocab)
    assert 0 < with_table.terms_embedded < len(vocab) / 2  # common words from the table; the name is not
    assert planned == with_table.terms_embedded
    assert not plan(sorted(vocab), None, embedder.dim, folder).todo  # now all in the cache


@pytest.mark.slow
def test_a_milvus_index_takes_common_terms_from_the_table(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    """The Milvus store embeds new terms as the FAISS folder does: the cache and the table first."""
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "정부는 인공지능 모델 평가 결과를 발표했다. 선정된 기업은 다음 단계에 참여한다. 퀵솔브랩스는 탈락했다."
    (corpus / "a.md").write_text(f"---\ntitle: 평가 결과\n---\n{text}", encoding="utf-8")
    vocab = {t for t in tokens("평가 결과 " + text) if translatable(t)}
    ms = replace(settings, cache_dir=str(_fresh(tmp_path / "c", settings)), store="milvus",
                 milvus_uri=str(tmp_path / "m.db"))
    report = build_index(ms, [corpus], tmp_path / "news", progress=False, embedder=embedder)
    assert 0 < report.terms_embedded < len(vocab) / 2  # common words from the table; the name is not


def _fresh(folder: Path, settings: Settings) -> Path:
    """A cache folder with the converted model (symlinks) but no term vectors cached."""
    folder.mkdir()
    for p in Path(settings.cache_dir).iterdir():
        if p.name != "terms":
            (folder / p.name).symlink_to(p)
    return folder


@pytest.fixture(autouse=True)
def _clear_table_memo() -> None:
    termtable._table.cache_clear()


class _Counting:
    """The real embedder, recording which texts reach the model."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sent = inner, []  # type: list[str]
        self.checksum, self.query_prompt, self.dim = inner.checksum, inner.query_prompt, inner.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.sent.extend(texts)
        return self.inner.encode_queries(texts)


def test_question_words_in_the_table_skip_the_model(settings: Settings, embedder: Any) -> None:
    from rag.store.crosslex import TermVectors

    index_terms = TermVectors.of(["선정", "평가"], embedder.encode_queries(["선정", "평가"]))
    counting = _Counting(embedder)
    table = termtable.for_questions(counting, settings.term_table)
    assert table is not None
    words = ["government", "평가", "zyxwvutsq"]  # in the table, an index term, in neither
    got = index_terms.word_vectors(words, counting, {}, table)
    assert counting.sent == ["zyxwvutsq"]  # only the unknown word went through the model
    ref = embedder.encode_queries(words)
    assert all(float(g @ r) > 0.995 for g, r in zip(got, ref, strict=True))
    assert termtable.for_questions(counting, enabled=False) is None  # RAG_TERM_TABLE=0
