"""Index build / load / update: atomic writes, validation errors, incremental updates."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexStoreError
from rag.store.index import build_index
from rag.store.indexfiles import load_index
from rag.text import tokens

ARTICLES = {
    "semis.md": "---\ntitle: 반도체 수출 증가\noutlet: 테스트일보\npublished: 2025-03-02\n---\n"
    "삼성전자의 반도체 수출이 3월에 20% 늘었다. 메모리 가격 회복이 원인으로 꼽힌다.\n\n"
    "SK하이닉스도 HBM 판매 호조로 실적이 개선됐다.",
    "weather.md": "---\ntitle: Heavy rain in Busan\noutlet: Test Herald\npublished: 2024-07-10\n---\n"
    "Heavy rain flooded several roads in Busan on Tuesday. The city closed two tunnels.\n\n"
    "Forecasters expect the monsoon to last until Friday.",
    "kbo.md": "---\ntitle: 야구 개막전\noutlet: 테스트일보\npublished: 2024-03-23\n---\n"
    "프로야구 개막전에서 LG 트윈스가 한화 이글스를 이겼다. 관중 2만 명이 경기장을 찾았다.",
}


def write_corpus(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


class CountingEmbedder:
    """The real embedder, counting how many passages (and sentences) and index terms it embeds."""

    def __init__(self, inner: Any, fail_after: int | None = None) -> None:
        self.inner = inner
        self.embedded = 0
        self.terms = 0
        self.fail_after = fail_after
        self.model_id, self.checksum, self.dim = inner.model_id, inner.checksum, inner.dim

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def encode_passages(self, texts: list[str], progress: Any = None) -> np.ndarray:
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of embedding
        self.embedded += len(texts)
        return np.asarray(self.inner.encode_passages(texts, progress=progress))

    def encode_queries(self, texts: list[str], progress: Any = None) -> np.ndarray:
        self.terms += len(texts)
        return np.asarray(self.inner.encode_queries(texts, progress=progress))


def test_build_then_unchanged_embeds_nothing(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    settings = replace(settings, cache_dir=str(tmp_path / "cache"))  # no term vectors cached yet
    corpus = write_corpus(tmp_path / "corpus")
    idx = tmp_path / "index"
    first = CountingEmbedder(embedder)
    r1 = build_index(settings, [corpus], idx, progress=False, embedder=first)
    assert r1.documents == 3 and r1.chunks >= 3 and r1.embedded == r1.chunks
    assert r1.sentences_embedded > 0 and first.embedded == r1.chunks + r1.sentences_embedded
    assert r1.terms_embedded > 0 and first.terms == r1.terms_embedded
    second = CountingEmbedder(embedder)
    r2 = build_index(settings, [corpus], idx, progress=False, embedder=second)
    assert r2.up_to_date and second.embedded == 0 and second.terms == 0
    manifest = json.loads((idx / "manifest.json").read_text())
    assert manifest["format"] == "rag-index/3"
    assert manifest["embedding"]["model"] == settings.embed_model
    assert manifest["embedding"]["dim"] == 384
    assert set(manifest["sources"]) == {"semis", "weather", "kbo"}


def test_index_from_before_term_pairs_is_upgraded_without_embedding(
    tmp_path: Path, settings: Settings, embedder: Any
) -> None:
    corpus, idx = write_corpus(tmp_path / "corpus"), tmp_path / "index"
    build_index(settings, [corpus], idx, progress=False, embedder=embedder)
    # what an index written before BM25 pairs existed looks like
    shutil.rmtree(idx / "bm25" / "pairs-keyed")
    manifest = json.loads((idx / "manifest.json").read_text())
    del manifest["params"]["term_pairs"]
    (idx / "manifest.json").write_text(json.dumps(manifest))
    assert not load_index(idx, settings).lexical.pair_scores(tokens("반도체 수출")).any()  # still searchable
    counting = CountingEmbedder(embedder)
    r = build_index(settings, [corpus], idx, progress=False, embedder=counting)
    assert not r.up_to_date and counting.embedded == 0 and counting.terms == 0
    assert load_index(idx, settings).lexical.pair_scores(tokens("반도체 수출")).any()


def test_add_and_delete_article(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    settings = replace(settings, cache_dir=str(tmp_path / "cache"))  # no term vectors cached yet
    corpus = write_corpus(tmp_path / "corpus")
    idx = tmp_path / "index"
    build_index(settings, [corpus], idx, progress=False, embedder=embedder)
    before = load_index(idx, settings)
    (corpus / "new.md").write_text(
        "---\ntitle: 새 기사\n---\n카카오가 새 AI 모델을 공개했다. 모델 이름은 카나나로 정해졌다.", encoding="utf-8"
    )
    counting = CountingEmbedder(embedder)
    r = build_index(settings, [corpus], idx, progress=False, embedder=counting)
    new_chunks = [c for c in load_index(idx, settings).chunks if c.doc_id == "new"]
    # only the new passage and its two sentences go through the model
    assert r.added == ("new",) and len(new_chunks) == 1 and r.embedded == 1
    assert r.sentences_embedded == 2 and counting.embedded == 3
    assert 0 < counting.terms == r.terms_embedded <= 10  # the new article's new terms, not the ~50 known ones
    (corpus / "kbo.md").unlink()
    counting = CountingEmbedder(embedder)
    r = build_index(settings, [corpus], idx, progress=False, embedder=counting)
    after = load_index(idx, settings)
    assert r.removed == ("kbo",) and counting.embedded == 0
    assert not any(c.doc_id == "kbo" for c in after.chunks)
    kbo_chunks = sum(1 for c in before.chunks if c.doc_id == "kbo")
    assert len(after.chunks) == len(before.chunks) - kbo_chunks + len(new_chunks)
    # vectors reused from the old index are the same vectors
    old_row = next(i for i, c in enumerate(before.chunks) if c.doc_id == "semis")
    new_row = next(i for i, c in enumerate(after.chunks) if c.doc_id == "semis")
    np.testing.assert_allclose(before.vectors()[old_row], after.vectors()[new_row], atol=1e-6)
    assert before.sentences is not None and after.sentences is not None
    np.testing.assert_array_equal(before.sentences.of(old_row), after.sentences.of(new_row))


def test_unreadable_file_keeps_previous_version(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    idx = tmp_path / "index"
    build_index(settings, [corpus], idx, progress=False, embedder=embedder)
    (corpus / "weather.md").write_bytes(b"\xff\xfe\x00\x00garbage\x00\x81")
    r = build_index(settings, [corpus], idx, progress=False, embedder=embedder)
    assert any("weather.md" in p.path for p in r.problems)
    assert "weather" in r.kept
    assert any(c.doc_id == "weather" for c in load_index(idx, settings).chunks)


def test_interrupted_build_leaves_old_index(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    idx = tmp_path / "index"
    build_index(settings, [corpus], idx, progress=False, embedder=embedder)
    before = [c.chunk_id for c in load_index(idx, settings).chunks]
    (corpus / "more.md").write_text("완전히 새로운 기사 본문이다. 두 번째 문장이다.", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, [corpus], idx, rebuild=True, progress=False,
                    embedder=CountingEmbedder(embedder, fail_after=0))
    assert [c.chunk_id for c in load_index(idx, settings).chunks] == before
    # no half-written folder left; the writer lock file (.index.lock, rag.store.indexlock) stays by design
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index") and p.name != ".index.lock"] == []


def test_crash_between_renames_recovers(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    idx = tmp_path / "index"
    build_index(settings, [write_corpus(tmp_path / "corpus")], idx, progress=False, embedder=embedder)
    idx.rename(tmp_path / "index.old")  # the state after the first rename of a swap
    assert len(load_index(idx, settings).chunks) > 0


@pytest.fixture
def built(tmp_path: Path, settings: Settings, embedder: Any) -> Path:
    idx = tmp_path / "index"
    build_index(settings, [write_corpus(tmp_path / "corpus")], idx, progress=False, embedder=embedder)
    return idx


def test_missing_index_names_dir_and_fix(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(IndexStoreError, match=r"nowhere.*rag index"):
        load_index(tmp_path / "nowhere", settings)


def test_unknown_format(built: Path, settings: Settings) -> None:
    m = json.loads((built / "manifest.json").read_text())
    m["format"] = "rag-index/99"
    (built / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexStoreError, match=r"manifest.json.*rag-index/99.*--rebuild"):
        load_index(built, settings)


def test_model_mismatch(built: Path, settings: Settings) -> None:
    other = replace(settings, embed_model="intfloat/some-other-model")
    with pytest.raises(IndexStoreError, match=r"some-other-model.*--rebuild"):
        load_index(built, other)


def test_truncated_vectors(built: Path, settings: Settings) -> None:
    f = built / "vectors.faiss"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(IndexStoreError, match=r"vectors.faiss.*truncated.*--rebuild"):
        load_index(built, settings)


def test_missing_chunk_store(built: Path, settings: Settings) -> None:
    (built / "chunks.jsonl").unlink()
    with pytest.raises(IndexStoreError, match=r"chunks.jsonl is missing"):
        load_index(built, settings)


def test_damaged_manifest(built: Path, settings: Settings) -> None:
    (built / "manifest.json").write_text("{not json")
    with pytest.raises(IndexStoreError, match=r"manifest.json is damaged"):
        load_index(built, settings)


def test_switches_to_hnsw_above_threshold(tmp_path: Path, settings: Settings) -> None:
    """Above ann_threshold the index is HNSW, and its recall@10 against exact search is high."""
    import faiss

    from rag.store.index import _faiss_index

    rng = np.random.default_rng(0)
    n, d, latent = 20_000, 384, 48
    proj = rng.standard_normal((latent, d)).astype(np.float32)
    z = rng.standard_normal((200, latent)).astype(np.float32)[rng.integers(0, 200, n)]
    x = (z + 0.5 * rng.standard_normal((n, latent)).astype(np.float32)) @ proj
    x += 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, n, 200)] + 0.05 * rng.standard_normal((200, d)).astype(np.float32)
    fx, factory = _faiss_index(x, replace(settings, ann_threshold=10_000))
    assert factory.startswith("HNSW")
    exact = faiss.IndexFlatIP(d)
    exact.add(x)
    _, gt = exact.search(q, 10)
    _, got = fx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, gt, strict=True)])
    assert recall >= 0.99
    _, small = _faiss_index(x[:100], settings)
    assert small == "Flat"


def test_ivf_sq8_above_ivf_threshold(tmp_path: Path, settings: Settings) -> None:
    """Above ivf_threshold the index is an inverted file of int8 vectors; it finds what exact search
    finds, decodes passage vectors on demand and honours a row filter."""
    from rag.records import Chunk
    from rag.store.index import write_index

    rng = np.random.default_rng(1)
    n, d = 4_000, 384
    x = rng.standard_normal((80, d)).astype(np.float32)[rng.integers(0, 80, n)]
    x += 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    chunks = [Chunk(f"d{i}#0000", f"d{i}", f"passage {i}", 0, 9, "en") for i in range(n)]
    metas = [{"doc_id": f"d{i}", "title": "", "sha256": "", "source": ""} for i in range(n)]
    low = replace(settings, ann_threshold=1_000, ivf_threshold=2_000, ivf_nprobe=8)
    model = type("M", (), {"model_id": settings.embed_model, "checksum": "x", "dim": d})()
    factory = write_index(tmp_path / "ivf", low, model, chunks, metas, x)
    assert factory == "IVF64,SQ8"
    index = load_index(tmp_path / "ivf", low)
    q = x[rng.integers(0, n, 100)] + 0.05 * rng.standard_normal((100, d)).astype(np.float32)
    gt = np.argsort(-(q @ x.T), axis=1)[:, :10]
    got = [index.dense_search(v, 10)[0] for v in q]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, gt, strict=True)]) >= 0.9
    np.testing.assert_allclose(index.vectors()[[3, 7]], x[[3, 7]], atol=0.02)
    assert index.vectors()[5].shape == (d,) and len(index.vectors()) == n
    allowed = np.arange(0, n, 7)
    ids, _ = index.dense_search(q[0], 5, allowed)
    assert len(ids) and set(ids.tolist()) <= set(allowed.tolist())


def test_rag_index_uses_ivf_above_the_threshold(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    """The product path: `rag index` over the threshold writes IVF-SQ8, and hybrid search finds the article."""
    from rag.search.retrieve import Retriever

    low = replace(settings, ann_threshold=0, ivf_threshold=1)
    report = build_index(low, [write_corpus(tmp_path / "corpus")], tmp_path / "idx", progress=False, embedder=embedder)
    assert report.factory.startswith("IVF") and report.factory.endswith(",SQ8")
    hits = Retriever(load_index(tmp_path / "idx", low), embedder, low).search("Which tunnels were closed in Busan?")
    assert hits[0].chunk.doc_id == "weather"


def test_sentence_vectors_are_int8_and_older_float16_ones_still_load(built: Path, settings: Settings) -> None:
    from rag.store.sentvec import SCALES_FILE, VECTORS_FILE

    index = load_index(built, settings)
    assert index.sentences is not None and index.sentences.vectors.dtype == np.int8
    row = int(np.argmax(np.diff(index.sentences.offsets)))
    quantised = index.sentences.of(row)
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=0.01)
    # what an index written before quantisation holds: float16 vectors, no scales file
    np.save(built / VECTORS_FILE, index.sentences.rows(np.arange(index.sentences.offsets[-1])).astype(np.float16))
    (built / SCALES_FILE).unlink()
    manifest = json.loads((built / "manifest.json").read_text())
    del manifest["files"][SCALES_FILE]
    manifest["files"][VECTORS_FILE] = (built / VECTORS_FILE).stat().st_size
    (built / "manifest.json").write_text(json.dumps(manifest))
    old = load_index(built, settings)
    assert old.sentences is not None and old.sentences.vectors.dtype == np.float16
    np.testing.assert_allclose(old.sentences.of(row), quantised, atol=2e-3)


def test_truncated_sentence_vectors(built: Path, settings: Settings) -> None:
    f = built / "sentences.npy"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(IndexStoreError, match=r"sentences.npy.*truncated.*--rebuild"):
        load_index(built, settings)


def test_sentence_vectors_are_pooled_from_the_passage(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    from rag.model.pooled import TOP_LAYERS, encode_pooled
    from rag.store.sentvec import sentence_spans, sentence_texts

    settings = replace(settings, sentence_pooling=True)  # the default (RAG_SENTENCE_POOLING=0 encodes them alone)
    built = tmp_path / "pooled"
    build_index(settings, [write_corpus(tmp_path / "corpus")], built, progress=False, embedder=embedder)
    assert json.loads((built / "manifest.json").read_text())["params"]["sentence_vectors"] == f"pooled-top{TOP_LAYERS}"
    index = load_index(built, settings)
    assert index.sentences is not None
    row = next(i for i, c in enumerate(index.chunks) if c.doc_id == "weather" and "tunnels" in c.text)
    texts = sentence_texts(index.chunks[row])
    assert any(t.startswith("Heavy rain flooded") for t in texts) and len(texts) >= 2
    stored = np.asarray(index.sentences.of(row), dtype=np.float32)
    _, pooled = encode_pooled(embedder, [index.chunks[row].text], [sentence_spans(index.chunks[row])])
    np.testing.assert_allclose(stored, pooled[0], atol=2e-3)
    # the best sentence of a passage is the one the question is about
    q = embedder.encode_queries(["Which tunnels were closed in Busan?"])[0]
    rows = np.array([row])
    best = index.sentences.best(rows, q, fallback=np.zeros(1))
    assert best[0] == pytest.approx(float(np.max(stored @ q)), abs=1e-5)
    assert int(np.argmax(stored @ q)) == next(i for i, t in enumerate(texts) if "tunnels" in t)


def test_second_index_takes_term_vectors_from_the_cache(tmp_path: Path, settings: Settings, embedder: Any) -> None:
    # the cache folder alone: not the shipped table of common words (tests/test_termtable.py)
    settings = replace(settings, cache_dir=str(tmp_path / "cache"), term_table=False)
    corpus = write_corpus(tmp_path / "corpus")
    first = CountingEmbedder(embedder)
    r1 = build_index(settings, [corpus], tmp_path / "a", progress=False, embedder=first)
    assert r1.terms_embedded > 10 and first.terms == r1.terms_embedded
    # another index of the same articles, with nothing to reuse but the cache folder
    second = CountingEmbedder(embedder)
    r2 = build_index(settings, [corpus], tmp_path / "b", progress=False, embedder=second, rebuild=True)
    assert r2.terms_embedded == 0 and second.terms == 0
    a, b = load_index(tmp_path / "a", settings).terms, load_index(tmp_path / "b", settings).terms
    assert a is not None and b is not None and a.terms == b.terms
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-3)


class InterruptedEmbedder:
    """The real embedder, whose forward pass is stopped (as by Ctrl-C) after ``stop_after`` batches."""

    def __init__(self, inner: Any, stop_after: int | None = None) -> None:
        self.inner, self.stop_after, self.batches = inner, stop_after, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def passage_states(self, texts: list[str]) -> Any:
        from rag.model.pooled import _passage_pass

        if self.stop_after is not None and self.batches >= self.stop_after:
            raise KeyboardInterrupt
        self.batches += 1
        return _passage_pass(self.inner, texts)


def test_interrupted_build_resumes_without_re_embedding(
    tmp_path: Path, settings: Settings, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.store import checkpoint

    monkeypatch.setattr(checkpoint, "BLOCK", 1)  # one passage per checkpoint file
    settings = replace(settings, cache_dir=str(tmp_path / "cache"), sentence_pooling=True)
    corpus, idx = write_corpus(tmp_path / "corpus"), tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, [corpus], idx, progress=False, embedder=InterruptedEmbedder(embedder, stop_after=2))
    assert not idx.exists()  # never a half-written index
    again = InterruptedEmbedder(embedder)
    r = build_index(settings, [corpus], idx, progress=False, embedder=again)
    assert r.resumed == 2 and r.embedded == r.chunks - 2 and again.batches == r.chunks - 2
    assert not list((tmp_path / "cache" / "checkpoints").glob("*/*.npz"))  # done: checkpoint gone
    clean = tmp_path / "clean"
    build_index(settings, [corpus], clean, progress=False, embedder=embedder)
    resumed, fresh = load_index(idx, settings), load_index(clean, settings)
    np.testing.assert_allclose(resumed.vectors(), fresh.vectors(), atol=1e-5)
    assert resumed.sentences is not None and fresh.sentences is not None
    np.testing.assert_array_equal(resumed.sentences.offsets, fresh.sentences.offsets)
    np.testing.assert_allclose(resumed.sentences.vectors, fresh.sentences.vectors, atol=2e-3)


def test_previous_format_is_refused_with_the_fix_and_upgraded_by_rag_index(
    built: Path, settings: Settings, embedder: Any
) -> None:
    m = json.loads((built / "manifest.json").read_text())
    m["format"] = "rag-index/1"
    (built / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexStoreError, match=r"manifest.json.*older version.*rag-index/1.*rag index --rebuild"):
        load_index(built, settings)
    corpus = built.parent / "corpus"
    r = build_index(settings, [corpus], built, progress=False, embedder=embedder)
    assert not r.up_to_date and r.embedded == r.chunks
    assert json.loads((built / "manifest.json").read_text())["format"] == "rag-index/3"


def test_rag_index_2_folder_is_read_and_upgraded_without_embedding(
    built: Path, settings: Settings, embedder: Any
) -> None:
    """A folder of the previous format (float16 sentence vectors, string BM25 pairs) is searched as
    it is, and `rag index` rewrites it in the current one reusing every vector."""
    from rag.store.lexical import KEYED_FOLDER, PAIRS_FOLDER, term_pairs
    from rag.store.sentvec import SCALES_FILE, VECTORS_FILE
    from rag.text import tokens_batch
    from tests.test_lexical import bm25s_index

    index = load_index(built, settings)
    assert index.sentences is not None
    np.save(built / VECTORS_FILE, index.sentences.rows(np.arange(index.sentences.offsets[-1])).astype(np.float16))
    (built / SCALES_FILE).unlink()
    shutil.rmtree(built / "bm25" / KEYED_FOLDER)
    bm25s_index([term_pairs(t) for t in tokens_batch([c.text for c in index.chunks])]).save(
        str(built / "bm25" / PAIRS_FOLDER), show_progress=False
    )
    m = json.loads((built / "manifest.json").read_text())
    m["format"], m["params"]["term_pairs"] = "rag-index/2", True
    del m["files"][SCALES_FILE]
    m["files"][VECTORS_FILE] = (built / VECTORS_FILE).stat().st_size
    (built / "manifest.json").write_text(json.dumps(m))
    old = load_index(built, settings)
    assert old.lexical.pair_scores(tokens("반도체 수출이 늘었다")).any()
    assert old.sentences is not None and old.sentences.vectors.dtype == np.float16
    counting = CountingEmbedder(embedder)
    r = build_index(settings, [built.parent / "corpus"], built, progress=False, embedder=counting)
    assert not r.up_to_date and counting.embedded == 0 and counting.terms == 0
    new = load_index(built, settings)
    assert new.manifest["format"] == "rag-index/3" and new.sentences is not None
    assert new.sentences.vectors.dtype == np.int8 and (built / "bm25" / KEYED_FOLDER).is_dir()


# ----------------------------------------------------------------- one writer, no leftovers (issue 17)
def test_a_second_writer_fails_fast_naming_the_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    from rag.errors import IndexStoreError
    from rag.store.indexlock import index_lock, writer_active

    index = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from rag.store.indexlock import index_lock\n"
        f"with index_lock(Path({str(index)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert writer_active(index)
        with pytest.raises(IndexStoreError, match=rf"PID {holder.pid}\b"), index_lock(index):
            pass
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    assert not writer_active(index)
    with index_lock(index):
        assert writer_active(index)


def test_leftovers_of_killed_builds_are_removed(tmp_path: Path) -> None:
    from rag.store.indexlock import index_lock

    index = tmp_path / "index"
    (tmp_path / ".index.tmp-12345").mkdir()
    (tmp_path / ".index.tmp-12345" / "vectors.faiss").write_bytes(b"x" * 100)
    (tmp_path / "index.old").mkdir()  # killed between the swap's two renames: old aside, new not in
    (tmp_path / "index.old" / "manifest.json").write_text("{}")
    with index_lock(index):
        assert (index / "manifest.json").is_file()  # the previous index is back
        assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]
    (tmp_path / "index.old").mkdir()  # killed after the swap, before the old one was deleted
    with index_lock(index):
        assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]


# ----------------------------------------------------------------- chunk store and row files (issue 12, round 3)


def test_chunk_store_is_read_row_by_row_and_an_older_folder_gets_its_arrays(
    built: Path, settings: Settings, embedder: Any
) -> None:
    from rag.search.retrieve import Retriever
    from rag.store.chunkstore import ROWS_FILE, ChunkStore

    rows = [json.loads(line) for line in (built / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    index = load_index(built, settings)
    store = index.chunks
    assert isinstance(store, ChunkStore) and (built / ROWS_FILE).is_file()
    assert [(c.chunk_id, c.doc_id, c.text, c.start, c.end, c.lang) for c in store] == [
        (r["chunk_id"], r["doc_id"], r["text"], r["start"], r["end"], r["lang"]) for r in rows]
    assert store[-1].chunk_id == rows[-1]["chunk_id"] and [c.chunk_id for c in store[1:3]] == [
        r["chunk_id"] for r in rows[1:3]]
    assert [store.row_of(r["chunk_id"]) for r in rows] == list(range(len(rows)))
    assert list(store.langs) == [r["lang"] for r in rows]
    semis = [i for i, r in enumerate(rows) if r["doc_id"] == "semis"]
    assert store.rows_of_doc("semis").tolist() == semis and store.rows_of_doc("nope").size == 0
    with pytest.raises(KeyError):
        store.row_of("semis#9999")
    hits = Retriever(index, embedder, settings).search("Which tunnels were closed in Busan?")
    # a folder written before chunk_rows.npz: the same store from one pass over chunks.jsonl
    (built / ROWS_FILE).unlink()
    manifest = json.loads((built / "manifest.json").read_text())
    del manifest["files"][ROWS_FILE]
    (built / "manifest.json").write_text(json.dumps(manifest))
    older = load_index(built, settings)
    assert [c.chunk_id for c in older.chunks] == [r["chunk_id"] for r in rows]
    assert older.chunks.rows_of_doc("semis").tolist() == semis
    assert [h.chunk for h in Retriever(older, embedder, settings).search("Which tunnels were closed in Busan?")] == [
        h.chunk for h in hits]
    counting = CountingEmbedder(embedder)
    r = build_index(settings, [built.parent / "corpus"], built, progress=False, embedder=counting)
    assert r.up_to_date and counting.embedded == 0 and (built / ROWS_FILE).is_file()


def test_chunk_store_that_does_not_fit_its_file_is_refused(built: Path, settings: Settings) -> None:
    f = built / "chunks.jsonl"
    f.write_bytes(f.read_bytes() + b'{"chunk_id": "x#0000", "doc_id": "x", "start": 0, "end": 1, "text": "x"}\n')
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["files"]["chunks.jsonl"] = f.stat().st_size
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match=r"chunks.jsonl.*chunk_rows.npz.*--rebuild"):
        load_index(built, settings)


def test_row_file_reads_the_rows_asked_for(tmp_path: Path) -> None:
    from rag.store.rowfile import RowFile

    a = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float16)
    np.save(tmp_path / "a.npy", a)
    f = RowFile(tmp_path / "a.npy")
    assert f.shape == (50, 7) and f.dtype == np.float16 and len(f) == 50
    for take in ([3], [0, 1, 2, 10, 11, 49], [5, 4, 4, 30], []):
        np.testing.assert_array_equal(f[np.array(take, np.int64)], a[take])
    np.testing.assert_array_equal(f[7], a[7])
    np.testing.assert_array_equal(f[10:20], a[10:20])
    np.testing.assert_array_equal(np.asarray(f), a)
    with pytest.raises(IndexError):
        f[np.array([50])]
    np.save(tmp_path / "s.npy", np.arange(9, dtype=np.float32))
    np.testing.assert_array_equal(RowFile(tmp_path / "s.npy")[np.array([8, 2])], [8.0, 2.0])


def test_release_mapped_drops_resident_pages_and_keeps_the_data(tmp_path: Path) -> None:
    import sys

    from rag.store.rowfile import release_mapped

    if not sys.platform.startswith("linux"):
        pytest.skip("madvise and /proc are Linux's")
    data = np.arange(4 << 20, dtype=np.int64)  # 32 MB
    np.save(tmp_path / "big.npy", data)
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert int(mapped.sum()) == int(data.sum())  # every page touched

    def resident_mb() -> float:
        total, inside = 0, False
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if line[:1] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = line.endswith("big.npy")
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
        return total / 1024

    assert resident_mb() > 16
    assert release_mapped([tmp_path]) >= data.nbytes and resident_mb() < 1
    assert int(mapped[12345]) == 12345 and int(mapped.sum()) == int(data.sum())


def test_sentence_vectors_assembled_as_int8_equal_those_quantised_on_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.store import sentvec

    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((int(rng.integers(0, 5)), 8)).astype(np.float16) for _ in range(300)]
    monkeypatch.setattr(sentvec, "_PASSAGE_BLOCK", 7)  # many blocks, some with no sentence at all
    plain, quantised = sentvec.assemble(parts, 8), sentvec.assemble(parts, 8, quantised=True)
    codes, scales = sentvec.quantise(np.asarray(plain.vectors))
    np.testing.assert_array_equal(quantised.vectors, codes)
    np.testing.assert_array_equal(np.asarray(quantised.scales), scales)
    np.testing.assert_array_equal(quantised.offsets, plain.offsets)
    np.testing.assert_allclose(quantised.of(5), plain.of(5), atol=0.05)
